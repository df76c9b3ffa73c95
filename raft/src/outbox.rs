//! The outbox driver: the leader of a workflow group delivers its executions' outbox messages
//! (child starts, external signals and cancels, child-close reports, parent-close policies) to
//! their targets, possibly in other groups. See `docs/design/003-cross-shard-outbox.md`.
//!
//! Each delivery is two proposals: `ReceiveMessage` to the target's group (idempotent there),
//! then `AckMessage` to this group, which removes the entry and records the result. A failure of
//! either is retried with per-entry exponential back-off until both succeed; a crash or a leader
//! change between them only causes a redelivery. The driver keeps no durable state: it reads the
//! pending entries from the group's applied state every round, so a new leader (or a restarted
//! node) simply carries on. It runs only while this node leads the group, like the timer driver,
//! and sleeps without polling when nothing is pending.

use crate::error::ProposeError;
use crate::timer::BoxFuture;
use crate::watch;
use perdura_engine::{
    DeliveryOutcome, EngineError, GroupId, OutboxEntry, OutboxMessage, ShardCommandKind,
    ShardReply, WorkflowKey,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How the driver reaches any workflow group. [`crate::MultiRaft`]'s router proposes to the
/// groups this node leads; issue 4 adds forwarding to other nodes' leaders behind this seam.
pub trait MessageRouter: Send + Sync + 'static {
    /// The group that owns the workflow ([`ProposeError::NoSlotMap`] before this node has
    /// applied the slot map).
    fn group_of(&self, workflow: &WorkflowKey) -> Result<GroupId, ProposeError>;
    /// Proposes a workflow command to `group` and waits until it is applied.
    fn propose(
        &self,
        group: GroupId,
        kind: ShardCommandKind,
    ) -> BoxFuture<'_, Result<Result<ShardReply, EngineError>, ProposeError>>;
}

/// The source group as its driver sees it.
pub trait OutboxSource: Send + Sync + 'static {
    /// The group's pending outbox messages (applied state), in delivery order.
    fn pending(&self) -> Vec<(OutboxEntry, OutboxMessage)>;
}

/// First retry delay of a failed delivery; it doubles per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Everything one group's driver needs.
pub struct OutboxDriver {
    pub group: GroupId,
    pub source: Arc<dyn OutboxSource>,
    pub router: Arc<dyn MessageRouter>,
    /// Notified when an applied entry adds an outbox message or a snapshot replaced the state.
    pub signal: Arc<Notify>,
}

/// A failed entry: how often it failed and when to try again.
struct Backoff {
    failures: u32,
    retry_at: Instant,
}

impl OutboxDriver {
    /// Runs until `shutdown` turns true (or its sender is dropped).
    pub async fn run(
        self,
        mut is_leader: watch::Receiver<bool>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut backoff: BTreeMap<OutboxEntry, Backoff> = BTreeMap::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if !*is_leader.borrow_and_update() {
                backoff.clear();
                tokio::select! {
                    biased;
                    r = is_leader.changed() => if r.is_err() { return },
                    r = shutdown.changed() => if r.is_err() { return },
                }
                continue;
            }
            let pending = self.source.pending();
            backoff.retain(|entry, _| pending.iter().any(|(e, _)| e == entry));
            let mut delivered = false;
            let mut next_retry: Option<Instant> = None;
            for (entry, message) in pending {
                if *shutdown.borrow() || !*is_leader.borrow() {
                    break;
                }
                if let Some(b) = backoff.get(&entry)
                    && b.retry_at > Instant::now()
                {
                    next_retry = Some(next_retry.map_or(b.retry_at, |n| n.min(b.retry_at)));
                    continue;
                }
                match self.deliver(&entry, message).await {
                    Ok(()) => {
                        backoff.remove(&entry);
                        delivered = true;
                    }
                    Err(error) => {
                        let failures = backoff.get(&entry).map_or(1, |b| b.failures + 1);
                        let delay = FIRST_BACKOFF
                            .saturating_mul(1 << failures.min(6).saturating_sub(1))
                            .min(MAX_BACKOFF);
                        tracing::debug!(group = %self.group, ?entry, %error, failures, "outbox delivery failed; retrying");
                        let retry_at = Instant::now() + delay;
                        backoff.insert(entry, Backoff { failures, retry_at });
                        next_retry = Some(next_retry.map_or(retry_at, |n| n.min(retry_at)));
                    }
                }
            }
            if delivered {
                // Acks may have produced new entries; look again at once.
                continue;
            }
            tokio::select! {
                biased;
                _ = async {
                    match next_retry {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {},
                _ = self.signal.notified() => {},
                r = is_leader.changed() => if r.is_err() { return },
                r = shutdown.changed() => if r.is_err() { return },
            }
        }
    }

    /// Receive on the target's group, then ack on this group.
    async fn deliver(&self, entry: &OutboxEntry, message: OutboxMessage) -> Result<(), String> {
        let kind = message.kind();
        let target = self
            .router
            .group_of(&message.target())
            .map_err(|e| format!("routing the message: {e}"))?;
        let receive = ShardCommandKind::ReceiveMessage {
            source: entry.execution.clone(),
            outbox_id: entry.outbox_id,
            message,
        };
        let outcome: DeliveryOutcome = match self.router.propose(target, receive).await {
            Ok(Ok(ShardReply::Delivered(outcome))) => outcome,
            Ok(Ok(other)) => return Err(format!("unexpected receive reply {other:?}")),
            Ok(Err(e)) => return Err(format!("receive refused: {e}")),
            Err(e) => return Err(format!("receive on {target}: {e}")),
        };
        let ack = ShardCommandKind::AckMessage {
            execution: entry.execution.clone(),
            outbox_id: entry.outbox_id,
            kind,
            outcome,
        };
        match self.router.propose(self.group, ack).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("ack refused: {e}")),
            Err(e) => Err(format!("ack: {e}")),
        }
    }
}
