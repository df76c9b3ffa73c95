//! OperatorService: every RPC answers UNIMPLEMENTED for now (search attributes and Nexus
//! endpoints come with visibility in a later issue).

use crate::pb::operatorservice::operator_service_server::OperatorService;

#[derive(Default)]
pub struct Operator;

#[tonic::async_trait]
impl OperatorService for Operator {}
