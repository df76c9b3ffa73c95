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
    pub net: Network,
}

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
            net,
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
    pub async fn replace_node(&mut self, victim: NodeId) -> Result<NodeId, ClusterError> {
        let status = self.status().await?;
        self.node(victim)?.kill();
        self.cli(
            "remove-node",
            &["--node-id".to_owned(), victim.0.to_string()],
        )
        .await?;
        if let Some(mut gone) = self.nodes.remove(&victim) {
            gone.wipe();
        }
        self.net.remove_node(victim);
        let fresh = NodeId(
            status
                .highest_node_id
                .max(self.members().into_iter().map(|n| n.0).max().unwrap_or(0))
                + 1,
        );
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
        self.cli(
            "add-node",
            &[
                "--node-id".to_owned(),
                fresh.0.to_string(),
                "--peer-addr".to_owned(),
                peer,
                "--catch-up-timeout".to_owned(),
                "60".to_owned(),
            ],
        )
        .await?;
        Ok(fresh)
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
        self.start_all(timeout).await
    }

    /// Kills every node and tears the network down.
    pub fn shutdown(&mut self) {
        for node in self.nodes.values_mut() {
            node.kill();
        }
        self.net.teardown();
    }
}
