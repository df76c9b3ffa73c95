//! The cluster under test: the network, one [`NodeProcess`] per member, and the admin actions
//! the nemesis and the end of the run need, through the `perdura cluster …` CLI run from the
//! harness's (root) namespace: status, remove-node, add-node, split-group.
//!
//! Invariants: `members` is the set the cluster should converge on (a removed node leaves it,
//! a joined node enters it); every node process and namespace is gone once the cluster is
//! dropped (node handles kill on drop, then the network tears down).

use super::disk::DiskFaults;
use super::exec::ExecError;
use super::net::Network;
use super::node::{Membership, NodeConfig, NodeError, NodeProcess};
use super::status::ClusterStatus;
use crate::ids::NodeId;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("no live node answers `perdura cluster {0}`: {1}")]
    NoAnswer(&'static str, String),
    #[error("`perdura cluster status --json` printed something else: {0}")]
    StatusFormat(#[from] serde_json::Error),
    #[error("the cluster did not converge within {seconds}s: {why}")]
    NotConverged { seconds: u64, why: String },
    #[error("node {0} is not a member")]
    UnknownNode(NodeId),
    #[error("this host cannot run the requested disk faults: {0}")]
    DiskFaults(String),
}

/// What every node of a run shares.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub binary: PathBuf,
    /// The run's directory; node `i` lives in `nodes/n<i>/`.
    pub dir: PathBuf,
    pub groups: u32,
    pub libfaketime: Option<PathBuf>,
    /// The disk faults the run uses (lazyfs data dirs, strace).
    pub disk_faults: DiskFaults,
}

pub struct Cluster {
    pub config: ClusterConfig,
    // Field order matters: nodes are killed before their namespaces go.
    pub nodes: BTreeMap<NodeId, NodeProcess>,
    /// Removed nodes, dead and wiped, kept until the cluster is dropped: a lazyfs data dir is
    /// unmounted only then. Every live node's namespace holds a copy of every lazyfs mount
    /// made before it started (`ip netns exec` gives each node its own mount namespace), so
    /// the FUSE session of a removed node does not end while other nodes run, and unmounting
    /// it in the middle of a run blocked the harness for good (seed 401, 5 nodes).
    retired: Vec<NodeProcess>,
    pub net: Network,
    /// A membership change the nemesis began and could not finish under its faults.
    pending: Option<PendingChange>,
}

/// The unfinished half of a node replacement.
enum PendingChange {
    /// `victim` is killed and out of `nodes`; `remove-node` has not succeeded yet. `fresh`
    /// joins once it has.
    Remove {
        victim: NodeId,
        process: Box<NodeProcess>,
        fresh: NodeId,
    },
    /// `fresh` runs (and is a member); `add-node` has not succeeded yet.
    Add { fresh: NodeId, peer: String },
}

/// How long the nemesis retries one half of a node replacement before leaving it to the heal.
const MEMBERSHIP_RETRY: Duration = Duration::from_secs(45);
/// How long the heal (no faults left) retries a pending membership change.
const HEAL_MEMBERSHIP_RETRY: Duration = Duration::from_secs(120);

/// How long one CLI call may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

impl Cluster {
    /// Creates the network and the node handles (not started) of an `n`-node cluster.
    pub fn create(config: ClusterConfig, net_id: u8, n: u64) -> Result<Cluster, ClusterError> {
        config
            .disk_faults
            .check()
            .map_err(ClusterError::DiskFaults)?;
        let ids: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let net = Network::create(net_id, &ids)?;
        let initial = ids
            .iter()
            .map(|&id| format!("{}={}:{}", id.0, net.node_ip(id), super::node::PEER_PORT))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            config,
            nodes: BTreeMap::new(),
            retired: Vec::new(),
            net,
            pending: None,
        };
        for id in ids {
            let node = cluster.node_config(id, Membership::Initial(initial.clone()));
            cluster.nodes.insert(id, NodeProcess::new(node)?);
        }
        Ok(cluster)
    }

    fn node_config(&self, node: NodeId, membership: Membership) -> NodeConfig {
        NodeConfig {
            node,
            namespace: self.net.namespace(node),
            ip: self.net.node_ip(node),
            binary: self.config.binary.clone(),
            dir: self.config.dir.join("nodes").join(format!("n{}", node.0)),
            groups: self.config.groups,
            membership,
            libfaketime: self.config.libfaketime.clone(),
            lazyfs: self.config.disk_faults.lazyfs,
        }
    }

    pub fn members(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn node(&mut self, id: NodeId) -> Result<&mut NodeProcess, ClusterError> {
        self.nodes.get_mut(&id).ok_or(ClusterError::UnknownNode(id))
    }

    /// `(node, "http://ip:port")` of every member.
    pub fn endpoints(&self) -> Vec<(NodeId, String)> {
        self.nodes
            .values()
            .map(|n| (n.id(), format!("http://{}", n.config.grpc_addr())))
            .collect()
    }

    /// Starts every member that is not running and waits until each accepts connections.
    pub async fn start_all(&mut self, timeout: Duration) -> Result<(), ClusterError> {
        for node in self.nodes.values_mut() {
            if !node.is_running() {
                node.start()?;
            }
        }
        for node in self.nodes.values_mut() {
            node.wait_ready(timeout).await?;
        }
        Ok(())
    }

    /// Runs `perdura cluster <args> --addr <node>` against each live member in turn until one
    /// succeeds; its stdout.
    pub async fn cli(
        &mut self,
        what: &'static str,
        args: &[String],
    ) -> Result<String, ClusterError> {
        let mut last = String::from("no live member");
        let candidates: Vec<(NodeId, String)> = self
            .nodes
            .values_mut()
            .filter_map(|n| {
                (n.is_running() && !n.is_paused())
                    .then(|| (n.id(), n.config.grpc_addr().to_string()))
            })
            .collect();
        for (_, addr) in candidates {
            let mut command = tokio::process::Command::new(&self.config.binary);
            command
                .arg("cluster")
                .arg(what)
                .args(args)
                .args(["--addr", &addr])
                .kill_on_drop(true)
                .stdin(std::process::Stdio::null());
            match tokio::time::timeout(CLI_TIMEOUT, command.output()).await {
                Ok(Ok(output)) if output.status.success() => {
                    return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
                }
                Ok(Ok(output)) => {
                    last = format!("{addr}: {}", String::from_utf8_lossy(&output.stderr).trim());
                }
                Ok(Err(error)) => last = format!("{addr}: {error}"),
                Err(_) => last = format!("{addr}: timed out after {}s", CLI_TIMEOUT.as_secs()),
            }
        }
        Err(ClusterError::NoAnswer(what, last))
    }

    pub async fn status(&mut self) -> Result<ClusterStatus, ClusterError> {
        let json = self.cli("status", &["--json".to_owned()]).await?;
        Ok(serde_json::from_str(&json)?)
    }

    /// Waits until every group has a leader and equal applied indexes on every member.
    pub async fn wait_converged(
        &mut self,
        timeout: Duration,
    ) -> Result<ClusterStatus, ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            let why = match self.status().await {
                Ok(status) => match status.not_converged(&self.members()) {
                    None => return Ok(status),
                    Some(why) => why,
                },
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(ClusterError::NotConverged {
                    seconds: timeout.as_secs(),
                    why,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Membership change: kills `victim`, removes it from every group, and adds a fresh node
    /// (the next unused id, empty data dir) that joins through a live member. The new node's id.
    ///
    /// Each half is retried for [`MEMBERSHIP_RETRY`]: `remove-node` and `add-node` are
    /// idempotent and resumable, and under faults a group leader may refuse a step it cannot
    /// commit yet (a removal that would leave no reachable majority). A half still not done is
    /// kept as [`PendingChange`] and finished by [`Cluster::heal_all`], so the cluster converges
    /// on the membership the harness expects instead of a half-removed node.
    pub async fn replace_node(&mut self, victim: NodeId) -> Result<NodeId, ClusterError> {
        // One change at a time: an earlier replacement left pending is finished first.
        self.finish_pending(MEMBERSHIP_RETRY).await?;
        let status = self.status().await?;
        let fresh = NodeId(
            status
                .highest_node_id
                .max(self.members().into_iter().map(|n| n.0).max().unwrap_or(0))
                + 1,
        );
        let mut retiring = self
            .nodes
            .remove(&victim)
            .ok_or(ClusterError::UnknownNode(victim))?;
        retiring.kill();
        self.pending = Some(PendingChange::Remove {
            victim,
            process: Box::new(retiring),
            fresh,
        });
        self.finish_pending(MEMBERSHIP_RETRY).await?;
        Ok(fresh)
    }

    /// Drives the pending membership change to its end, retrying each CLI step until
    /// `patience` runs out (the change stays pending then).
    async fn finish_pending(&mut self, patience: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + patience;
        while let Some(change) = self.pending.take() {
            match change {
                PendingChange::Remove {
                    victim,
                    mut process,
                    fresh,
                } => {
                    let args = ["--node-id".to_owned(), victim.0.to_string()];
                    if let Err(e) = self.cli_until("remove-node", &args, deadline).await {
                        self.pending = Some(PendingChange::Remove {
                            victim,
                            process,
                            fresh,
                        });
                        return Err(e);
                    }
                    process.wipe();
                    self.retired.push(*process);
                    self.net.remove_node(victim);
                    let peer = self.start_fresh(fresh).await?;
                    self.pending = Some(PendingChange::Add { fresh, peer });
                }
                PendingChange::Add { fresh, peer } => {
                    let args = [
                        "--node-id".to_owned(),
                        fresh.0.to_string(),
                        "--peer-addr".to_owned(),
                        peer.clone(),
                        "--catch-up-timeout".to_owned(),
                        "60".to_owned(),
                    ];
                    if let Err(e) = self.cli_until("add-node", &args, deadline).await {
                        self.pending = Some(PendingChange::Add { fresh, peer });
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts node `fresh` (empty data dir, `--join` through a live member) and waits until it
    /// serves; its peer address, for `add-node`.
    async fn start_fresh(&mut self, fresh: NodeId) -> Result<String, ClusterError> {
        self.net.add_node(fresh)?;
        let via = self
            .nodes
            .values()
            .next()
            .map(|n| n.config.peer_addr().to_string())
            .ok_or(ClusterError::NoAnswer("add-node", "no member left".into()))?;
        let config = self.node_config(fresh, Membership::Join(via));
        let peer = config.peer_addr().to_string();
        let mut process = NodeProcess::new(config)?;
        process.start()?;
        process.wait_ready(Duration::from_secs(30)).await?;
        self.nodes.insert(fresh, process);
        Ok(peer)
    }

    /// [`Cluster::cli`] again, a second apart, until it succeeds or `deadline` passes.
    async fn cli_until(
        &mut self,
        what: &'static str,
        args: &[String],
        deadline: Instant,
    ) -> Result<String, ClusterError> {
        loop {
            match self.cli(what, args).await {
                Ok(out) => return Ok(out),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(e) => println!("`perdura cluster {what}` not done yet, retrying: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Splits workflow group `group` (`perdura cluster split-group`); the split's JSON answer.
    pub async fn split_group(&mut self, group: u32) -> Result<String, ClusterError> {
        self.cli(
            "split-group",
            &["--group".to_owned(), group.to_string(), "--json".to_owned()],
        )
        .await
    }

    /// Heals the network, resumes paused nodes, resets clocks and starts dead members.
    pub async fn heal_all(&mut self, timeout: Duration) -> Result<(), ClusterError> {
        self.net.heal()?;
        for node in self.nodes.values_mut() {
            node.heal_fsync_errors();
            node.resume();
            node.set_clock_offset(0)?;
        }
        self.start_all(timeout).await?;
        self.finish_pending(timeout.max(HEAL_MEMBERSHIP_RETRY))
            .await
    }

    /// Kills every node and tears the network down.
    pub fn shutdown(&mut self) {
        for node in self.nodes.values_mut() {
            node.kill();
        }
        self.net.teardown();
    }
}
