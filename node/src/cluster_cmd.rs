//! `perdura cluster status | add-node | remove-node | snapshot | split-group | read-replica`: the operator's client of the
//! `perdura.admin.v1.ClusterAdmin` service that every node serves on its `--grpc-addr`.
//!
//! `status --json` prints [`StatusJson`], a stable format for scripts and tests (documented in
//! `docs/design/007-membership.md`): fields are only ever added, never renamed or removed.

use anyhow::Context;
use clap::{Args, Subcommand};
use perdura_api::pb::admin::cluster_admin_client::ClusterAdminClient;
use perdura_api::pb::admin::{
    AddNodeRequest, ClusterStatusRequest, ClusterStatusResponse, GroupStatus, NodeStatus,
    RemoveNodeRequest, ReplicaStatus, SlotRange, SplitGroupRequest, TriggerSnapshotRequest,
};
use serde::Serialize;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Nodes, groups, leaders, applied index and lag per replica.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON (a stable format for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Add a fresh node (started with `--join`) to every group; it catches up (by snapshot if
    /// needed) and becomes a voter. Node ids are never reused.
    AddNode {
        #[command(flatten)]
        target: Target,
        /// The new node's id (above every id ever used; see `status`).
        #[arg(long)]
        node_id: u64,
        /// The new node's `--peer-addr`.
        #[arg(long)]
        peer_addr: String,
        /// Seconds the node may take to catch up in each group.
        #[arg(long, default_value_t = 60)]
        catch_up_timeout: u64,
    },
    /// Remove a node from every group and retire its id.
    RemoveNode {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        node_id: u64,
    },
    /// Build a snapshot of every group on the addressed node (and purge the log it covers).
    Snapshot {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        purge: bool,
    },
    /// Split the upper half of a workflow group's largest slot range off into a new group, while
    /// workflows run (re-running it for the same group finishes an interrupted split).
    SplitGroup {
        #[command(flatten)]
        target: Target,
        /// The workflow group to split (see `status`).
        #[arg(long)]
        group: u32,
        /// Print JSON: {"source", "new_group", "source_slots", "new_group_slots"}.
        #[arg(long)]
        json: bool,
    },
    /// What the addressed node itself has applied (no forwarding, no read barrier): per group the
    /// applied index, state digest, committed log entries held and every run's history.
    ReadReplica {
        #[command(flatten)]
        target: Target,
        /// Only this group (default: every group the node hosts).
        #[arg(long)]
        group: Option<u32>,
        /// Print the chaos final read's node JSON (`{"node", "groups": [...]}`,
        /// chaos-tests/README.md "The final read") instead of a summary table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct Target {
    /// The `--grpc-addr` (HOST:PORT) of any node of the cluster.
    #[arg(long)]
    addr: String,
}

async fn connect(target: &Target) -> anyhow::Result<ClusterAdminClient<tonic::transport::Channel>> {
    let url = if target.addr.contains("://") {
        target.addr.clone()
    } else {
        format!("http://{}", target.addr)
    };
    let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .with_context(|| format!("invalid address {}", target.addr))?
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("connect to {url}"))?;
    Ok(ClusterAdminClient::new(channel))
}

/// Runs a `perdura cluster` command; the result goes to stdout.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Status { target, json } => {
            let mut client = connect(&target).await?;
            let status = client
                .cluster_status(ClusterStatusRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&StatusJson::from(&status))?
                );
            } else {
                print!("{}", render_table(&status));
            }
        }
        ClusterCommand::AddNode {
            target,
            node_id,
            peer_addr,
            catch_up_timeout,
        } => {
            let mut client = connect(&target).await?;
            let reply = client
                .add_node(AddNodeRequest {
                    node_id,
                    peer_addr,
                    catch_up_timeout_ms: catch_up_timeout.saturating_mul(1000),
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            let state = reply.node.map(|n| n.state).unwrap_or_default();
            println!(
                "node {node_id} is {state} ({} group memberships changed)",
                reply.groups_changed
            );
        }
        ClusterCommand::RemoveNode { target, node_id } => {
            let mut client = connect(&target).await?;
            let reply = client
                .remove_node(RemoveNodeRequest { node_id })
                .await
                .map_err(rpc_error)?
                .into_inner();
            let state = reply.node.map(|n| n.state).unwrap_or_default();
            println!(
                "node {node_id} is {state} ({} group memberships changed); its id is never reused",
                reply.groups_changed
            );
        }
        ClusterCommand::Snapshot { target, purge } => {
            let mut client = connect(&target).await?;
            let reply = client
                .trigger_snapshot(TriggerSnapshotRequest { purge })
                .await
                .map_err(rpc_error)?
                .into_inner();
            for group in reply.groups {
                println!(
                    "group {}: snapshot at {}, log purged to {}",
                    group.group, group.snapshot_index, group.purged_index
                );
            }
        }
        ClusterCommand::SplitGroup {
            target,
            group,
            json,
        } => {
            let mut client = connect(&target).await?;
            let reply = client
                .split_group(SplitGroupRequest { group })
                .await
                .map_err(rpc_error)?
                .into_inner();
            let split = SplitJson {
                source: reply.source,
                new_group: reply.new_group,
                source_slots: reply.source_slots.iter().map(slot_pair).collect(),
                new_group_slots: reply.new_group_slots.iter().map(slot_pair).collect(),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&split)?);
            } else {
                println!(
                    "group {} split: group {} now owns slots {}, group {} owns slots {}",
                    split.source,
                    split.source,
                    render_slots(&split.source_slots),
                    split.new_group,
                    render_slots(&split.new_group_slots)
                );
            }
        }
        ClusterCommand::ReadReplica {
            target,
            group,
            json,
        } => read_replica(&target, group, json).await?,
    }
    Ok(())
}

/// `perdura cluster read-replica`: the node is named by its own node id.
async fn read_replica(target: &Target, group: Option<u32>, json: bool) -> anyhow::Result<()> {
    use perdura_chaos::ids::{GroupId, NodeId};
    use perdura_chaos::workload::nodes::NodeAddr;
    let mut client = connect(target).await?;
    let summary = client
        .read_replica(perdura_api::pb::admin::ReadReplicaRequest {
            group,
            summary_only: true,
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    let node = NodeAddr {
        id: NodeId(summary.node_id),
        addr: target.addr.clone(),
    };
    let read = perdura_chaos::workload::replica::read_node(&node, group.map(GroupId)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&read)?);
    } else {
        println!("node {}", read.node.0);
        println!("GROUP  APPLIED   DIGEST            LOG ENTRIES  RUNS");
        for g in &read.groups {
            println!(
                "{:<6} {:<9} {:<17} {:<12} {}",
                g.group.0,
                g.applied_index.0,
                g.state_digest,
                g.committed.len(),
                g.runs.len()
            );
        }
    }
    Ok(())
}

/// `perdura cluster split-group --json`: slot ranges as `[start, end)` pairs.
#[derive(Serialize, Debug, PartialEq)]
pub struct SplitJson {
    pub source: u32,
    pub new_group: u32,
    pub source_slots: Vec<[u32; 2]>,
    pub new_group_slots: Vec<[u32; 2]>,
}

fn slot_pair(range: &SlotRange) -> [u32; 2] {
    [range.start, range.end]
}

fn render_slots(ranges: &[[u32; 2]]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|[start, end]| format!("{start}..{end}"))
        .collect();
    parts.join(", ")
}

fn rpc_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

/// `perdura cluster status --json`.
#[derive(Serialize, Debug, PartialEq)]
pub struct StatusJson {
    pub cluster_id: String,
    pub answered_by: u64,
    pub highest_node_id: u64,
    pub nodes: Vec<NodeJson>,
    pub groups: Vec<GroupJson>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct NodeJson {
    pub id: u64,
    pub peer_addr: String,
    /// `joining`, `active`, `removed` or `unregistered`.
    pub state: String,
    pub reachable: bool,
    pub error: Option<String>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct GroupJson {
    pub group: u32,
    pub leader: Option<u64>,
    pub term: u64,
    pub leader_last_log_index: Option<u64>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub replicas: Vec<ReplicaJson>,
}

/// Indexes are `null` when the replica could not be asked.
#[derive(Serialize, Debug, PartialEq)]
pub struct ReplicaJson {
    pub node: u64,
    pub role: String,
    pub voter: bool,
    pub reachable: bool,
    pub applied_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub term: Option<u64>,
    pub matched_index: Option<u64>,
    pub lag: Option<u64>,
    pub digest: Option<String>,
}

impl From<&ClusterStatusResponse> for StatusJson {
    fn from(status: &ClusterStatusResponse) -> StatusJson {
        StatusJson {
            cluster_id: status.cluster_id.clone(),
            answered_by: status.answered_by,
            highest_node_id: status.highest_node_id,
            nodes: status.nodes.iter().map(node_json).collect(),
            groups: status.groups.iter().map(group_json).collect(),
        }
    }
}

fn node_json(node: &NodeStatus) -> NodeJson {
    NodeJson {
        id: node.id,
        peer_addr: node.peer_addr.clone(),
        state: node.state.clone(),
        reachable: node.reachable,
        error: (!node.error.is_empty()).then(|| node.error.clone()),
    }
}

fn group_json(group: &GroupStatus) -> GroupJson {
    let leader = (group.leader != 0).then_some(group.leader);
    GroupJson {
        group: group.group,
        leader,
        term: group.term,
        leader_last_log_index: leader.is_some().then_some(group.leader_last_log_index),
        voters: group.voters.clone(),
        learners: group.learners.clone(),
        replicas: group.replicas.iter().map(replica_json).collect(),
    }
}

fn replica_json(replica: &ReplicaStatus) -> ReplicaJson {
    let known = |value: u64| replica.reachable.then_some(value);
    ReplicaJson {
        node: replica.node,
        role: replica.role.clone(),
        voter: replica.voter,
        reachable: replica.reachable,
        applied_index: known(replica.applied_index),
        last_log_index: known(replica.last_log_index),
        snapshot_index: known(replica.snapshot_index),
        purged_index: known(replica.purged_index),
        term: known(replica.term),
        matched_index: replica.matched_index,
        lag: replica.lag,
        digest: (!replica.digest.is_empty()).then(|| replica.digest.clone()),
    }
}

/// The human-readable status.
fn render_table(status: &ClusterStatusResponse) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {} (answered by node {}, next node id {})",
        status.cluster_id,
        status.answered_by,
        status.highest_node_id + 1
    );
    let _ = writeln!(out, "\nNODE  STATE     REACHABLE  PEER ADDR");
    for node in &status.nodes {
        let _ = writeln!(
            out,
            "{:<5} {:<9} {:<10} {}{}",
            node.id,
            node.state,
            if node.reachable { "yes" } else { "no" },
            node.peer_addr,
            if node.error.is_empty() {
                String::new()
            } else {
                format!("  ({})", node.error)
            }
        );
    }
    let _ = writeln!(
        out,
        "\nGROUP  LEADER  TERM  REPLICA  ROLE       APPLIED  MATCHED  LAG  SNAPSHOT  DIGEST"
    );
    for group in &status.groups {
        for (i, replica) in group.replicas.iter().enumerate() {
            let (g, leader, term) = if i == 0 {
                (
                    group.group.to_string(),
                    if group.leader == 0 {
                        "-".to_string()
                    } else {
                        group.leader.to_string()
                    },
                    group.term.to_string(),
                )
            } else {
                (String::new(), String::new(), String::new())
            };
            let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            let known = |v: u64| {
                if replica.reachable {
                    v.to_string()
                } else {
                    "-".to_string()
                }
            };
            let digest: String = replica.digest.chars().take(12).collect();
            let _ = writeln!(
                out,
                "{g:<6} {leader:<7} {term:<5} {:<8} {:<10} {:<8} {:<8} {:<4} {:<9} {}",
                replica.node,
                format!("{}{}", replica.role, if replica.voter { "" } else { "*" }),
                known(replica.applied_index),
                opt(replica.matched_index),
                opt(replica.lag),
                known(replica.snapshot_index),
                if digest.is_empty() {
                    "-".into()
                } else {
                    digest
                },
            );
        }
    }
    let _ = writeln!(out, "\n(* = not a voter)");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClusterStatusResponse {
        ClusterStatusResponse {
            cluster_id: "c-1".into(),
            answered_by: 1,
            highest_node_id: 2,
            nodes: vec![
                NodeStatus {
                    id: 1,
                    peer_addr: "127.0.0.1:7001".into(),
                    state: "active".into(),
                    reachable: true,
                    error: String::new(),
                },
                NodeStatus {
                    id: 2,
                    peer_addr: "127.0.0.1:7002".into(),
                    state: "active".into(),
                    reachable: false,
                    error: "connection refused".into(),
                },
            ],
            groups: vec![GroupStatus {
                group: 0,
                leader: 1,
                term: 3,
                leader_last_log_index: 40,
                voters: vec![1, 2],
                learners: vec![],
                replicas: vec![
                    ReplicaStatus {
                        node: 1,
                        role: "leader".into(),
                        voter: true,
                        applied_index: 40,
                        last_log_index: 40,
                        snapshot_index: 0,
                        purged_index: 0,
                        term: 3,
                        matched_index: Some(40),
                        lag: Some(0),
                        digest: "abcdef0123456789".into(),
                        reachable: true,
                    },
                    ReplicaStatus {
                        node: 2,
                        role: "unknown".into(),
                        voter: true,
                        matched_index: Some(31),
                        lag: Some(9),
                        ..Default::default()
                    },
                ],
            }],
        }
    }

    #[test]
    fn json_marks_unknown_values_null() {
        let json = serde_json::to_value(StatusJson::from(&sample())).expect("json");
        assert_eq!(json["groups"][0]["leader"], 1);
        assert_eq!(json["groups"][0]["replicas"][0]["applied_index"], 40);
        assert_eq!(
            json["groups"][0]["replicas"][0]["digest"],
            "abcdef0123456789"
        );
        let unreachable = &json["groups"][0]["replicas"][1];
        assert!(unreachable["applied_index"].is_null());
        assert!(unreachable["digest"].is_null());
        assert_eq!(unreachable["lag"], 9);
        assert_eq!(json["nodes"][1]["error"], "connection refused");
        assert!(json["nodes"][0]["error"].is_null());
    }

    #[test]
    fn table_lists_every_replica() {
        let table = render_table(&sample());
        assert!(table.contains("next node id 3"), "{table}");
        assert!(table.contains("connection refused"), "{table}");
        assert!(table.contains("abcdef012345"), "{table}");
        assert_eq!(
            table.lines().filter(|l| l.contains("leader ")).count(),
            1,
            "{table}"
        );
    }
}
