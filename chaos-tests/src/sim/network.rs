//! The simulated network: every Raft RPC between two simulated nodes, delayed, dropped or cut
//! by a partition, with every random choice drawn from the run's seeded generator.
//!
//! [`SimNetwork`] knows each started group's openraft handle (registered through
//! [`RaftTransport::group_started`]) and which directed links are cut. Each node gets its own
//! [`NodeTransport`] (openraft's transport seam of that node), so a message knows its sender.
//!
//! A message is delivered after a random delay (so messages overtake each other: reordering
//! without duplication); it is dropped with the current loss probability; a link that is cut,
//! or a node that is down, when the request leaves or when the answer would come back makes the
//! call fail as `Unreachable` — after the request may already have been applied, as on a real
//! network.
//!
//! Like Perdura's gRPC peer transport, every answer carries its answerer's clock reading, which
//! the asking node records with the instant its request left in its [`PeerClocks`]: the bounds
//! its leaders cap their own clock with. A network built without readings
//! ([`SimNetwork::new`]'s `carry_clock_readings`) makes leaders stamp their own clock — the
//! behaviour before the cap, kept to prove the simulation catches it.

use super::clock::NodeClocks;
use super::rng::SimRng;
use openraft::error::{RPCError, StreamingError, Unreachable};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use perdura_engine::GroupId;
use perdura_raft::RaftTransport;
use perdura_raft::peer_clocks::PeerClocks;
use perdura_raft::timer::BoxFuture;
use perdura_raft::types::{GroupRaft, Snapshot, TypeConfig, Vote};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Default)]
struct NetState {
    groups: BTreeMap<(u64, GroupId), GroupRaft>,
    /// Directed links `(from, to)` that drop everything.
    cut: BTreeSet<(u64, u64)>,
    down: BTreeSet<u64>,
    loss_percent: u32,
    delay_ms: (u64, u64),
    delivered: u64,
    dropped: u64,
}

/// The cluster's network. See the module docs.
pub struct SimNetwork {
    state: Mutex<NetState>,
    rng: SimRng,
    clocks: Arc<NodeClocks>,
    carry_clock_readings: bool,
}

impl SimNetwork {
    pub fn new(
        rng: SimRng,
        clocks: Arc<NodeClocks>,
        carry_clock_readings: bool,
    ) -> Arc<SimNetwork> {
        Arc::new(SimNetwork {
            state: Mutex::new(NetState {
                delay_ms: (1, 10),
                ..NetState::default()
            }),
            rng,
            clocks,
            carry_clock_readings,
        })
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The transport of `node` (a started node's: its clock readings start empty).
    pub fn transport(self: &Arc<Self>, node: u64) -> Arc<NodeTransport> {
        let peer_clocks = self
            .carry_clock_readings
            .then(|| Arc::new(PeerClocks::default()));
        Arc::new(NodeTransport {
            node,
            net: self.clone(),
            peer_clocks,
        })
    }

    pub fn set_down(&self, node: u64, down: bool) {
        let mut state = self.lock();
        if down {
            state.down.insert(node);
            state.groups.retain(|(n, _), _| *n != node);
        } else {
            state.down.remove(&node);
        }
    }

    /// Cuts (both directions) every link between `side` and the other `nodes`.
    pub fn partition(&self, side: &[u64], nodes: &[u64]) {
        let mut state = self.lock();
        for a in side {
            for b in nodes.iter().filter(|b| !side.contains(b)) {
                state.cut.insert((*a, *b));
                state.cut.insert((*b, *a));
            }
        }
    }

    /// Cuts one direction only: `from` no longer reaches `to`.
    pub fn cut_one_way(&self, from: u64, to: u64) {
        self.lock().cut.insert((from, to));
    }

    pub fn set_loss_percent(&self, percent: u32) {
        self.lock().loss_percent = percent.min(100);
    }

    pub fn set_delay_ms(&self, min: u64, max: u64) {
        self.lock().delay_ms = (min, max.max(min));
    }

    /// Heals every partition and loss and restores the normal delay (down nodes stay down).
    pub fn heal(&self) {
        let mut state = self.lock();
        state.cut.clear();
        state.loss_percent = 0;
        state.delay_ms = (1, 10);
    }

    /// Messages delivered and dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        let state = self.lock();
        (state.delivered, state.dropped)
    }

    fn reachable(&self, from: u64, to: u64) -> bool {
        let state = self.lock();
        !state.down.contains(&from) && !state.down.contains(&to) && !state.cut.contains(&(from, to))
    }

    /// Waits the message's delay and decides its fate: the target's handle, or unreachable.
    async fn send(
        &self,
        from: u64,
        to: u64,
        group: GroupId,
    ) -> Result<GroupRaft, Unreachable<TypeConfig>> {
        let (delay, lost) = {
            let state = self.lock();
            let (min, max) = state.delay_ms;
            let loss = state.loss_percent;
            drop(state);
            (
                self.rng.range(min, max + 1),
                self.rng.below(100) < u64::from(loss),
            )
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let target = {
            let mut state = self.lock();
            let ok = !lost
                && !state.down.contains(&from)
                && !state.down.contains(&to)
                && !state.cut.contains(&(from, to));
            let target = if ok {
                state.groups.get(&(to, group)).cloned()
            } else {
                None
            };
            match target {
                Some(_) => state.delivered += 1,
                None => state.dropped += 1,
            }
            target
        };
        target.ok_or_else(|| unreachable(from, to))
    }

    /// The answer travels back: it arrives only if the way back is open.
    async fn answer<T>(&self, from: u64, to: u64, answer: T) -> Result<T, Unreachable<TypeConfig>> {
        let (delay, lost) = {
            let state = self.lock();
            let (min, max) = state.delay_ms;
            let loss = state.loss_percent;
            drop(state);
            (
                self.rng.range(min, max + 1),
                self.rng.below(100) < u64::from(loss),
            )
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if lost || !self.reachable(to, from) {
            self.lock().dropped += 1;
            return Err(unreachable(to, from));
        }
        Ok(answer)
    }
}

fn unreachable(from: u64, to: u64) -> Unreachable<TypeConfig> {
    Unreachable::from_string(format!(
        "simulated network: node {from} cannot reach node {to}"
    ))
}

/// One node's side of the [`SimNetwork`]: openraft's transport seam for that node.
pub struct NodeTransport {
    node: u64,
    net: Arc<SimNetwork>,
    peer_clocks: Option<Arc<PeerClocks>>,
}

type Rpc<'a, T> = BoxFuture<'a, Result<T, RPCError<TypeConfig>>>;

impl NodeTransport {
    /// One RPC over the simulated network: the request's trip to `target` (delay, loss,
    /// partition), `call` on the target's replica of `group`, and the answer's trip back. An
    /// error the target answers with is reported as unreachable, as a real peer client would.
    /// The asking node records the clock reading the answer carried.
    async fn deliver<T, E, Call, Answer>(
        &self,
        target: u64,
        group: GroupId,
        call: Call,
    ) -> Result<T, Unreachable<TypeConfig>>
    where
        Call: FnOnce(GroupRaft) -> Answer,
        Answer: std::future::Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let sent = tokio::time::Instant::now();
        let raft = self.net.send(self.node, target, group).await?;
        let answer = call(raft)
            .await
            .map_err(|e| Unreachable::from_string(format!("node {target}: {e}")))?;
        let answered_ms = self.net.clocks.now_ms(target);
        let answer = self.net.answer(self.node, target, answer).await?;
        if let Some(clocks) = &self.peer_clocks {
            clocks.observe_reply(target, answered_ms, sent);
        }
        Ok(answer)
    }
}

impl RaftTransport for NodeTransport {
    fn append_entries(
        &self,
        target: u64,
        group: GroupId,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> Rpc<'_, AppendEntriesResponse<TypeConfig>> {
        Box::pin(async move {
            self.deliver(target, group, |raft| async move {
                raft.append_entries(rpc).await
            })
            .await
            .map_err(RPCError::Unreachable)
        })
    }

    fn vote(
        &self,
        target: u64,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>> {
        Box::pin(async move {
            self.deliver(target, group, |raft| async move { raft.vote(rpc).await })
                .await
                .map_err(RPCError::Unreachable)
        })
    }

    fn pre_vote(
        &self,
        target: u64,
        group: GroupId,
        rpc: VoteRequest<TypeConfig>,
    ) -> Rpc<'_, VoteResponse<TypeConfig>> {
        Box::pin(async move {
            self.deliver(
                target,
                group,
                |raft| async move { raft.pre_vote(rpc).await },
            )
            .await
            .map_err(RPCError::Unreachable)
        })
    }

    fn transfer_leader(
        &self,
        target: u64,
        group: GroupId,
        rpc: TransferLeaderRequest<TypeConfig>,
    ) -> Rpc<'_, TransferLeaderResponse<TypeConfig>> {
        Box::pin(async move {
            self.deliver(target, group, |raft| async move {
                raft.handle_transfer_leader(rpc).await
            })
            .await
            .map_err(RPCError::Unreachable)
        })
    }

    fn full_snapshot(
        &self,
        target: u64,
        group: GroupId,
        vote: Vote,
        snapshot: Snapshot,
    ) -> BoxFuture<'_, Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>>> {
        Box::pin(async move {
            self.deliver(target, group, |raft| async move {
                raft.install_full_snapshot(vote, snapshot).await
            })
            .await
            .map_err(StreamingError::Unreachable)
        })
    }

    fn group_started(&self, node: u64, group: GroupId, raft: &GroupRaft) {
        self.net.lock().groups.insert((node, group), raft.clone());
    }

    fn peer_clocks(&self) -> Option<Arc<PeerClocks>> {
        self.peer_clocks.clone()
    }
}
