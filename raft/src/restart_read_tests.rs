//! A leader that restarts after a power loss must not serve a linearizable read older than the
//! writes it acknowledged before the crash.
//!
//! Found by the deterministic simulation (seeds 1000 and 1261 of 3 nodes, 2085 of 5): a node
//! acked a start, lost its unsynced writes (the committed index and the state machine's applies
//! are written unsynced; only the log is fsynced before an ack), restarted, resumed leadership
//! from its persisted vote without an election (openraft's `enable_leader_restore`), and
//! answered a ReadIndex read with its on-disk committed index: "not found" for the run it had
//! acked. The replicas here run on the simulation's in-memory disks (a crash drops exactly the
//! unsynced writes) with the openraft configuration every Perdura cluster node uses.

use crate::meta_test_support::{
    current_leader, known_leader, namespaces_in, register_namespace, start_meta_replica,
    write_retrying,
};
use crate::multi::{ClusterRaftOptions, RaftTiming, RaftTuning, openraft_config};
use crate::network::LoopbackTransport;
use crate::state_machine::SharedState;
use crate::types::GroupRaft;
use openraft::{BasicNode, ReadPolicy};
use perdura_engine::GroupId;
use perdura_storage::{Db, MemoryDisks};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Replica {
    raft: GroupRaft,
    state: SharedState,
}

fn disk_path(node: u64) -> PathBuf {
    PathBuf::from(format!("/restart-read/node-{node}"))
}

/// Opens (or reopens, after a crash) `node`'s replica of the meta group on its in-memory disk.
async fn open(node: u64, disks: &Arc<MemoryDisks>, transport: &Arc<LoopbackTransport>) -> Replica {
    let tuning = RaftTuning {
        timing: Some(RaftTiming {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
        }),
        ..RaftTuning::default()
    };
    let config = openraft_config(&tuning, Some(ClusterRaftOptions)).expect("valid config");
    let path = disk_path(node);
    let db = Arc::new(Db::open_memory(&path, disks.disk(&path)));
    let (raft, state) = start_meta_replica(node, db, config, transport).await;
    Replica { raft, state }
}

fn namespaces(replica: &Replica) -> BTreeSet<String> {
    namespaces_in(&replica.state).into_iter().collect()
}

async fn leader_of(replicas: &BTreeMap<u64, Replica>) -> u64 {
    let any = &replicas.values().next().expect("a replica").raft;
    known_leader(any, |l| replicas.contains_key(&l)).await
}

/// A linearizable read on `node` as Perdura makes one: the read index from whoever leads (this
/// node or the leader it knows), then wait until `node` applied it. Retries while there is no
/// leader to ask.
async fn linearizable_read(replicas: &BTreeMap<u64, Replica>, node: u64) -> BTreeSet<String> {
    let reader = &replicas[&node];
    for _ in 0..200 {
        let leader = current_leader(&reader.raft);
        if let Some(leader) = leader.filter(|l| replicas.contains_key(l))
            && let Ok((read, _)) = replicas[&leader]
                .raft
                .get_read_log_id(ReadPolicy::ReadIndex)
                .await
        {
            reader
                .raft
                .wait(Some(Duration::from_secs(10)))
                .applied_index_at_least(Some(read.index()), "read index applied")
                .await
                .expect("the reader applies up to the read index");
            return namespaces(reader);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no leader answered a read index within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_restarted_after_a_power_loss_serves_no_read_older_than_its_acked_writes() {
    let disks = MemoryDisks::new();
    let transport = Arc::new(LoopbackTransport::default());
    let mut replicas = BTreeMap::new();
    for node in [1, 2, 3] {
        replicas.insert(node, open(node, &disks, &transport).await);
    }
    let members: BTreeMap<u64, BasicNode> = [1, 2, 3].map(|n| (n, BasicNode::default())).into();
    replicas[&1]
        .raft
        .initialize(members)
        .await
        .expect("initialize");
    let leader = leader_of(&replicas).await;

    let mut acked = BTreeSet::new();
    for i in 0..20 {
        let name = format!("ns-{i}");
        write_retrying(&replicas[&leader].raft, register_namespace(name.clone())).await;
        acked.insert(name);
    }

    // Power loss right after the last ack: the log is fsynced, the last commit marker and
    // apply are not. The leader comes back at once, before any follower's election timeout,
    // and finds its followers unreachable for a moment, so that nothing it hears from them
    // corrects its committed index before a read arrives (in the simulation, packet loss and
    // slow links did this).
    let lost = disks.disk(&disk_path(leader)).crash().lost_ops;
    assert!(
        lost > 0,
        "the crash dropped no unsynced write: nothing to test"
    );
    let old = replicas.remove(&leader).expect("the leader");
    transport.unregister(leader, GroupId::META);
    old.raft.shutdown().await.expect("shutdown");
    drop(old);
    let followers: Vec<u64> = replicas.keys().copied().collect();
    for node in &followers {
        transport.unregister(*node, GroupId::META);
    }
    replicas.insert(leader, open(leader, &disks, &transport).await);
    let replicas = Arc::new(replicas);
    let read = tokio::spawn({
        let replicas = replicas.clone();
        async move { linearizable_read(&replicas, leader).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    for node in &followers {
        transport.register(*node, GroupId::META, replicas[node].raft.clone());
    }

    let read = read.await.expect("the read task");
    let missing: Vec<&String> = acked.difference(&read).collect();
    assert!(
        missing.is_empty(),
        "a linearizable read on the restarted node {leader} misses acknowledged writes \
         {missing:?}"
    );
    for replica in replicas.values() {
        replica.raft.shutdown().await.expect("shutdown");
    }
}
