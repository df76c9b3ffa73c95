//! [`PeerRelay`]: membership calls to other nodes over the peer connection
//! ([`MessageKind::Admin`]).

use crate::membership::orchestrate::{AdminRelay, PeerAdminCall, PeerAdminReply, REPORT_TIMEOUT};
use crate::peer::client::GrpcTransport;
use crate::peer::proto::{self, MessageKind};
use crate::timer::BoxFuture;
use perdura_engine::GroupId;
use std::sync::Arc;
use std::time::Duration;

/// A step may wait this long beyond its catch-up time (leader search, the joint change).
const CHANGE_MARGIN: Duration = Duration::from_secs(30);

/// The [`AdminRelay`] of a cluster node.
pub struct PeerRelay {
    pub(crate) transport: Arc<GrpcTransport>,
}

impl AdminRelay for PeerRelay {
    fn call(
        &self,
        node: u64,
        call: PeerAdminCall,
    ) -> BoxFuture<'_, Result<PeerAdminReply, String>> {
        Box::pin(async move {
            let timeout = match &call {
                PeerAdminCall::Change {
                    catch_up_timeout_ms,
                    ..
                } => Duration::from_millis(*catch_up_timeout_ms) + CHANGE_MARGIN,
                PeerAdminCall::Report | PeerAdminCall::Join { .. } => REPORT_TIMEOUT,
            };
            let payload = proto::encode(&call)?;
            let reply = self
                .transport
                .call(node, GroupId::META, MessageKind::Admin, payload, timeout)
                .await
                .map_err(|e| e.to_string())?;
            proto::decode(&reply)
        })
    }
}
