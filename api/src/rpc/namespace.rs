//! RegisterNamespace, DescribeNamespace, ListNamespaces: namespaces live in the meta group.

use super::time::{duration, duration_ms};
use crate::frontend::Frontend;
use crate::{status, validate};
use perdura_engine::{MetaCommand, NamespaceRecord};
use temporalio_protos::temporal::api::enums::v1::NamespaceState;
use temporalio_protos::temporal::api::namespace::v1::{NamespaceConfig, NamespaceInfo};
use temporalio_protos::temporal::api::replication::v1::{
    ClusterReplicationConfig, NamespaceReplicationConfig,
};
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use tonic::Status;

/// Retention when RegisterNamespace does not give one.
const DEFAULT_RETENTION_MS: i64 = 3 * 24 * 3600 * 1000;

impl Frontend {
    pub(crate) async fn rpc_register_namespace(
        &self,
        request: ws::RegisterNamespaceRequest,
    ) -> Result<ws::RegisterNamespaceResponse, Status> {
        validate::required_id("Namespace", &request.namespace)?;
        let retention = duration_ms(request.workflow_execution_retention_period.as_ref());
        let record = NamespaceRecord {
            name: request.namespace,
            id: uuid::Uuid::new_v4().to_string(),
            description: request.description,
            owner_email: request.owner_email,
            retention_ms: if retention > 0 {
                retention
            } else {
                DEFAULT_RETENTION_MS
            },
            registered_at_ms: now_ms(),
        };
        match self
            .raft
            .propose_meta(MetaCommand::RegisterNamespace(record))
            .await
        {
            Ok(Ok(_)) => Ok(ws::RegisterNamespaceResponse {}),
            Ok(Err(error)) => Err(status::engine(error)),
            Err(error) => Err(status::propose(error)),
        }
    }

    pub(crate) async fn rpc_describe_namespace(
        &self,
        request: ws::DescribeNamespaceRequest,
    ) -> Result<ws::DescribeNamespaceResponse, Status> {
        let record = if !request.namespace.is_empty() {
            self.namespace(&request.namespace).await?
        } else if !request.id.is_empty() {
            self.raft
                .read_meta(|meta| {
                    meta.namespaces
                        .values()
                        .find(|ns| ns.id == request.id)
                        .cloned()
                })
                .ok_or_else(|| {
                    Status::not_found(format!("Namespace with id {} is not found.", request.id))
                })?
        } else {
            return Err(status::invalid("Namespace or Id is not set on request."));
        };
        Ok(describe(&record))
    }

    pub(crate) async fn rpc_list_namespaces(
        &self,
        _request: ws::ListNamespacesRequest,
    ) -> Result<ws::ListNamespacesResponse, Status> {
        let namespaces = self
            .raft
            .read_meta(|meta| meta.namespaces.values().map(describe).collect());
        Ok(ws::ListNamespacesResponse {
            namespaces,
            next_page_token: Vec::new(),
        })
    }
}

fn describe(record: &NamespaceRecord) -> ws::DescribeNamespaceResponse {
    ws::DescribeNamespaceResponse {
        namespace_info: Some(NamespaceInfo {
            name: record.name.clone(),
            state: NamespaceState::Registered as i32,
            description: record.description.clone(),
            owner_email: record.owner_email.clone(),
            id: record.id.clone(),
            ..Default::default()
        }),
        config: Some(NamespaceConfig {
            workflow_execution_retention_ttl: duration(record.retention_ms),
            ..Default::default()
        }),
        replication_config: Some(NamespaceReplicationConfig {
            active_cluster_name: "active".into(),
            clusters: vec![ClusterReplicationConfig {
                cluster_name: "active".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Wall-clock time on this node; only used to stamp proposals, never on the apply path.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
