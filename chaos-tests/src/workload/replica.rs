//! The end-of-run final read through each node's `ReadReplica` admin RPC: what every node has
//! applied, read locally (no forwarding, no read barrier), converted to the chaos
//! [`FinalRead`]. A node is read group by group (a summary call lists the groups), so no single
//! message holds a whole large node.

use super::events::observe;
use super::nodes::{NodeAddr, NodeAddrError};
use crate::history::{FinalRead, GroupRead, LogEntryId, NodeRead, RunHistory};
use crate::ids::{GroupId, HarnessNanos, NodeId, RaftIndex, RaftTerm, RunId, WorkflowId};
use perdura_api::pb::admin::cluster_admin_client::ClusterAdminClient;
use perdura_api::pb::admin::{ReadReplicaRequest, ReplicaGroup};
use prost::Message;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use thiserror::Error;
use tonic::transport::Channel;

/// The largest admin answer accepted (the server's limit, `MAX_ADMIN_MESSAGE_BYTES`).
const MAX_MESSAGE_BYTES: usize = perdura_api::admin::MAX_ADMIN_MESSAGE_BYTES;

#[derive(Debug, Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Address(#[from] NodeAddrError),
    #[error("{node} ({addr}): ReadReplica failed: {code:?}: {message}")]
    Rpc {
        node: NodeId,
        addr: String,
        code: tonic::Code,
        message: String,
    },
    #[error(
        "{node}: group {group}: run {workflow_id}/{run_id}: event {index} does not decode: {detail}"
    )]
    BadEvent {
        node: NodeId,
        group: u32,
        workflow_id: String,
        run_id: String,
        index: usize,
        detail: String,
    },
    #[error("the replicas did not converge within {timeout:?}: {detail}")]
    NotConverged { timeout: Duration, detail: String },
}

/// An admin client that accepts answers up to the server's limit.
pub fn admin_client(channel: Channel) -> ClusterAdminClient<Channel> {
    ClusterAdminClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES)
}

/// Converts one group of a `ReadReplica` answer of node `node`.
pub fn group_read(node: NodeId, group: &ReplicaGroup) -> Result<GroupRead, ReplicaError> {
    let mut runs = Vec::with_capacity(group.runs.len());
    for run in &group.runs {
        let mut events = Vec::with_capacity(run.events.len());
        for (index, bytes) in run.events.iter().enumerate() {
            let event =
                HistoryEvent::decode(bytes.as_slice()).map_err(|error| ReplicaError::BadEvent {
                    node,
                    group: group.group,
                    workflow_id: run.workflow_id.clone(),
                    run_id: run.run_id.clone(),
                    index,
                    detail: error.to_string(),
                })?;
            events.push(observe(&event));
        }
        runs.push(RunHistory {
            workflow_id: WorkflowId(run.workflow_id.clone()),
            run_id: RunId(run.run_id.clone()),
            events,
        });
    }
    Ok(GroupRead {
        group: GroupId(group.group),
        applied_index: RaftIndex(group.applied_index),
        state_digest: group.state_digest.clone(),
        committed: group
            .committed
            .iter()
            .map(|entry| LogEntryId {
                index: RaftIndex(entry.index),
                term: RaftTerm(entry.term),
                hash: entry.hash.clone(),
            })
            .collect(),
        runs,
    })
}

async fn call(
    client: &mut ClusterAdminClient<Channel>,
    node: &NodeAddr,
    request: ReadReplicaRequest,
    timeout: Duration,
) -> Result<perdura_api::pb::admin::ReadReplicaResponse, ReplicaError> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    client
        .read_replica(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| ReplicaError::Rpc {
            node: node.id,
            addr: node.addr.clone(),
            code: status.code(),
            message: status.message().to_owned(),
        })
}

/// Applied index per group of one node (a summary read).
pub async fn applied_indexes(
    client: &mut ClusterAdminClient<Channel>,
    node: &NodeAddr,
    timeout: Duration,
) -> Result<Vec<(GroupId, RaftIndex, String)>, ReplicaError> {
    let summary = call(
        client,
        node,
        ReadReplicaRequest {
            group: None,
            summary_only: true,
        },
        timeout,
    )
    .await?;
    Ok(summary
        .groups
        .iter()
        .map(|g| {
            (
                GroupId(g.group),
                RaftIndex(g.applied_index),
                g.state_digest.clone(),
            )
        })
        .collect())
}

/// Everything one node holds, read group by group; `node.id` names it in the result. `only`
/// restricts the read to one group.
pub async fn read_node(node: &NodeAddr, only: Option<GroupId>) -> Result<NodeRead, ReplicaError> {
    let timeout = Duration::from_secs(60);
    let mut client = admin_client(node.channel()?);
    let groups: Vec<GroupId> = match only {
        Some(group) => vec![group],
        None => applied_indexes(&mut client, node, timeout)
            .await?
            .into_iter()
            .map(|(group, _, _)| group)
            .collect(),
    };
    let mut reads = Vec::with_capacity(groups.len());
    for group in groups {
        let answer = call(
            &mut client,
            node,
            ReadReplicaRequest {
                group: Some(group.0),
                summary_only: false,
            },
            timeout,
        )
        .await?;
        for replica in &answer.groups {
            reads.push(group_read(node.id, replica)?);
        }
    }
    Ok(NodeRead {
        node: node.id,
        groups: reads,
    })
}

/// Waits until every node answers and all report the same groups at the same applied indexes
/// (and digests), polling every 200 ms for at most `timeout`.
pub async fn wait_converged(nodes: &[NodeAddr], timeout: Duration) -> Result<(), ReplicaError> {
    let deadline = Instant::now() + timeout;
    let mut clients = Vec::with_capacity(nodes.len());
    for node in nodes {
        clients.push(admin_client(node.channel()?));
    }
    loop {
        let mut views = BTreeMap::new();
        let mut problem = None;
        for (node, client) in nodes.iter().zip(clients.iter_mut()) {
            match applied_indexes(client, node, Duration::from_secs(5)).await {
                Ok(view) => {
                    views.insert(node.id, view);
                }
                Err(error) => problem = Some(error.to_string()),
            }
        }
        if problem.is_none() {
            let mut distinct = views.values();
            let first = distinct.next();
            if distinct.all(|view| Some(view) == first) {
                return Ok(());
            }
            problem = Some(format!("replicas differ: {views:?}"));
        }
        if Instant::now() >= deadline {
            return Err(ReplicaError::NotConverged {
                timeout,
                detail: problem.unwrap_or_default(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How often a group read at different applied indexes is read again on every node.
const CUT_ATTEMPTS: usize = 20;
/// The pause before each such read.
const CUT_RETRY: Duration = Duration::from_millis(500);

/// The final read of every node; `read_at` is the harness time the read began.
///
/// Nodes are read one after another, so a group that applies an entry in between (a timer of
/// the workload firing after the convergence check) is seen at two applied indexes and its
/// replicas would look different. Such a group is read again on every node until one pass
/// sees one applied index (at most [`CUT_ATTEMPTS`] times); what is left uneven then is for
/// the checkers to judge.
pub async fn read_cluster(
    nodes: &[NodeAddr],
    read_at: HarnessNanos,
) -> Result<FinalRead, ReplicaError> {
    let mut read = FinalRead {
        read_at_ns: read_at,
        nodes: Vec::with_capacity(nodes.len()),
    };
    for node in nodes {
        read.nodes.push(read_node(node, None).await?);
    }
    for _ in 0..CUT_ATTEMPTS {
        let uneven = read.groups_read_at_different_indexes();
        if uneven.is_empty() {
            break;
        }
        println!("final read: groups {uneven:?} moved while being read; reading them again");
        tokio::time::sleep(CUT_RETRY).await;
        for group in uneven {
            for (node, node_read) in nodes.iter().zip(read.nodes.iter_mut()) {
                for fresh in read_node(node, Some(group)).await?.groups {
                    node_read.replace_group(fresh);
                }
            }
        }
    }
    Ok(read)
}
