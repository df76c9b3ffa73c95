//! [`Forwarder`]: proposals and read barriers from any node, served by the group leader.
//!
//! A proposal is first offered to this node's own instance of the group; if that is not the
//! leader, it goes to the leader openraft names (one hop — the leader proposes it locally and
//! stamps its own time), following leader hints and backing off while no leader is known, until
//! the propose timeout. Outcomes keep the Jepsen classification: *not leader* / *not delivered*
//! is definitely not applied and is retried; a lost connection or timeout after sending is
//! [`ProposeError::Indeterminate`] and is never retried here.
//!
//! After a forwarded proposal succeeds, the origin waits (bounded) until its own replica has
//! applied the entry, so the caller's next local read sees its own write.
//!
//! The read barrier is ReadIndex: the leader confirms its leadership with a quorum and answers
//! its read index; this node waits until it has applied up to it.

use super::client::{CallError, GrpcTransport};
use super::host::{PeerHost, Unstamped};
use super::proto::{self, MessageKind};
use crate::error::ProposeError;
use crate::types::{ProposalReply, Written};
use perdura_engine::GroupId;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(250);

pub(crate) struct Forwarder {
    pub host: Arc<PeerHost>,
    pub client: Arc<GrpcTransport>,
    pub timeout: Duration,
}

/// Where to send the next attempt, with back-off between leaderless rounds.
struct Route {
    target: u64,
    hops: u32,
    backoff: Duration,
}

impl Forwarder {
    /// Proposes `proposal` to the leader of `group`, wherever it is.
    pub async fn propose(
        &self,
        group: GroupId,
        proposal: Unstamped,
    ) -> Result<ProposalReply, ProposeError> {
        let deadline = Instant::now() + self.timeout;
        let mut route = Route {
            target: self.host.node_id,
            hops: 0,
            backoff: FIRST_BACKOFF,
        };
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = if route.target == self.host.node_id {
                self.host
                    .propose_local(group, proposal.clone(), remaining)
                    .await
                    .map(|written| written.reply)
            } else {
                self.propose_remote(route.target, group, &proposal, deadline)
                    .await
            };
            match attempt {
                Err(ProposeError::NotLeader { leader }) => {
                    self.reroute(group, &mut route, leader, deadline).await?;
                }
                other => return other,
            }
        }
    }

    async fn propose_remote(
        &self,
        node: u64,
        group: GroupId,
        proposal: &Unstamped,
        deadline: Instant,
    ) -> Result<ProposalReply, ProposeError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let payload = proto::encode(proposal).map_err(ProposeError::Indeterminate)?;
        let written: Written = self
            .remote(node, group, MessageKind::Propose, payload, remaining)
            .await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let wait = remaining.max(Duration::from_millis(100));
        if !self.host.wait_applied(group, written.index, wait).await {
            tracing::warn!(%group, index = written.index, "a forwarded proposal is not applied locally in time");
        }
        Ok(written.reply)
    }

    /// Makes this node's replica of `group` linearizable: when it returns `Ok`, every write
    /// acknowledged anywhere before the call is applied here.
    pub async fn read_barrier(&self, group: GroupId) -> Result<(), ProposeError> {
        let deadline = Instant::now() + self.timeout;
        let mut route = Route {
            target: self.host.node_id,
            hops: 0,
            backoff: FIRST_BACKOFF,
        };
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let index = if route.target == self.host.node_id {
                self.host.read_index(group).await
            } else {
                self.remote(
                    route.target,
                    group,
                    MessageKind::ReadIndex,
                    Vec::new(),
                    remaining,
                )
                .await
            };
            match index {
                Ok(index) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    return if self.host.wait_applied(group, index, remaining).await {
                        Ok(())
                    } else {
                        Err(ProposeError::Indeterminate(format!(
                            "group {group} did not apply up to the read index {index} in time"
                        )))
                    };
                }
                Err(ProposeError::NotLeader { leader }) => {
                    self.reroute(group, &mut route, leader, deadline).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Calls `node` and decodes its `Result<T, ProposeError>` answer.
    async fn remote<T: DeserializeOwned>(
        &self,
        node: u64,
        group: GroupId,
        kind: MessageKind,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, ProposeError> {
        match self.client.call(node, group, kind, payload, timeout).await {
            Ok(bytes) => proto::decode::<Result<T, ProposeError>>(&bytes)
                .map_err(|e| ProposeError::Indeterminate(format!("undecodable answer: {e}")))?,
            Err(CallError::NotSent { node, detail }) => {
                tracing::debug!(node, %detail, "peer call not delivered");
                Err(ProposeError::NotLeader { leader: None })
            }
            Err(e @ CallError::Unknown { .. }) => Err(ProposeError::Indeterminate(e.to_string())),
        }
    }

    /// After a definite "not here": follow the hint at once (twice at most), otherwise back off
    /// and ask the local replica who leads. Past the deadline, the last refusal is the answer.
    async fn reroute(
        &self,
        group: GroupId,
        route: &mut Route,
        hint: Option<u64>,
        deadline: Instant,
    ) -> Result<(), ProposeError> {
        if Instant::now() >= deadline {
            return Err(ProposeError::NotLeader { leader: hint });
        }
        match hint {
            Some(leader) if leader != route.target && route.hops < 2 => {
                route.hops += 1;
                route.target = leader;
            }
            _ => {
                let pause = route
                    .backoff
                    .min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
                route.backoff = (route.backoff * 2).min(MAX_BACKOFF);
                route.hops = 0;
                route.target = self.host.known_leader(group).unwrap_or(self.host.node_id);
            }
        }
        Ok(())
    }
}
