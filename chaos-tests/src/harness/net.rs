//! The test network: one Linux bridge in the root namespace (the harness's address is on it)
//! and one network namespace per node, joined to the bridge by a veth pair. Faults are nft rules
//! on each receiving node's input hook, in one table per node namespace; heal deletes them.
//!
//! Naming (`K` = the net id, so parallel runs on one host do not collide): bridge `pdcKbr`,
//! namespaces `pdcKn<node>`, host-side veths `pdcKv<node>`, subnet `10.77.K.0/24`, node `i` at
//! `10.77.K.i`, the harness at `10.77.K.254`.
//!
//! Invariants: the table of a node is always rewritten whole from [`NetFaults`] (one atomic
//! `nft -f`), so what is installed is exactly the grudge and loss the harness believes in;
//! traffic from the harness address is never dropped; [`Network`] tears everything it created
//! down on drop, and [`cleanup`] removes leftovers of any earlier run by name.

use super::exec::{ExecError, run, run_quietly, run_with_input};
use super::grudge::Grudge;
use super::net_lock::{NetLock, held_by_another};
use crate::ids::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::Command;

/// All names of the harness start with this.
pub const PREFIX: &str = "pdc";
const TABLE: &str = "pdc";
/// The harness's host number on every subnet.
const HARNESS_HOST: u8 = 254;

/// The network faults installed right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetFaults {
    pub grudge: Grudge,
    /// Receiver → percent of packets from other nodes it drops at random.
    pub loss: BTreeMap<NodeId, u8>,
}

pub struct Network {
    net_id: u8,
    /// This harness owns the net id while the network lives ([`super::net_lock`]).
    _lock: Option<NetLock>,
    nodes: BTreeSet<NodeId>,
    faults: NetFaults,
    torn_down: bool,
}

impl Network {
    /// Creates the bridge and one namespace per node in `nodes` (ids 1..=253).
    pub fn create(net_id: u8, nodes: &[NodeId]) -> Result<Network, ExecError> {
        let lock = NetLock::try_take(net_id)
            .map_err(|e| ExecError::NetInUse {
                net_id,
                detail: format!("cannot take its lock: {e}"),
            })?
            .ok_or_else(|| ExecError::NetInUse {
                net_id,
                detail: "another running harness uses it".into(),
            })?;
        let mut network = Network {
            net_id,
            _lock: Some(lock),
            nodes: BTreeSet::new(),
            faults: NetFaults::default(),
            torn_down: false,
        };
        // Anything left by a crashed run with this id goes first.
        network.remove_all();
        let bridge = network.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run("ip", &["link", "set", &bridge, "up"])?;
        let harness = format!("{}/24", network.harness_ip());
        run("ip", &["addr", "add", &harness, "dev", &bridge])?;
        for &node in nodes {
            network.add_node(node)?;
        }
        Ok(network)
    }

    pub fn net_id(&self) -> u8 {
        self.net_id
    }

    pub fn bridge(&self) -> String {
        format!("{PREFIX}{}br", self.net_id)
    }

    pub fn namespace(&self, node: NodeId) -> String {
        namespace_name(self.net_id, node)
    }

    fn veth(&self, node: NodeId) -> String {
        format!("{PREFIX}{}v{}", self.net_id, node.0)
    }

    pub fn node_ip(&self, node: NodeId) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.net_id, node.0 as u8)
    }

    pub fn harness_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.net_id, HARNESS_HOST)
    }

    pub fn nodes(&self) -> Vec<NodeId> {
        self.nodes.iter().copied().collect()
    }

    pub fn faults(&self) -> &NetFaults {
        &self.faults
    }

    /// A namespace for `node`, plugged into the bridge (also for nodes added mid-run).
    pub fn add_node(&mut self, node: NodeId) -> Result<(), ExecError> {
        if node.0 == 0 || node.0 >= u64::from(HARNESS_HOST) {
            return Err(ExecError::Failed {
                command: format!("add node {}", node.0),
                status: "refused".into(),
                stderr: "node ids must be 1..=253 (one host number each)".into(),
            });
        }
        let ns = self.namespace(node);
        let veth = self.veth(node);
        let bridge = self.bridge();
        let address = format!("{}/24", self.node_ip(node));
        run("ip", &["netns", "add", &ns])?;
        self.nodes.insert(node);
        run(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )?;
        run("ip", &["link", "set", &veth, "master", &bridge])?;
        run("ip", &["link", "set", &veth, "up"])?;
        run("ip", &["-n", &ns, "addr", "add", &address, "dev", "eth0"])?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        self.install(node)
    }

    /// Deletes `node`'s namespace (a node removed from the cluster).
    pub fn remove_node(&mut self, node: NodeId) {
        self.faults.grudge.remove(&node);
        for sources in self.faults.grudge.values_mut() {
            sources.remove(&node);
        }
        self.faults.loss.remove(&node);
        run_quietly("ip", &["netns", "del", &self.namespace(node)]);
        run_quietly("ip", &["link", "del", &self.veth(node)]);
        self.nodes.remove(&node);
    }

    /// Replaces the partition by `grudge` (on top of any loss).
    pub fn set_grudge(&mut self, grudge: Grudge) -> Result<(), ExecError> {
        let touched: BTreeSet<NodeId> = self
            .faults
            .grudge
            .keys()
            .chain(grudge.keys())
            .copied()
            .collect();
        self.faults.grudge = grudge;
        touched.into_iter().try_for_each(|node| self.install(node))
    }

    /// Drops `percent` of the packets `node` receives from other nodes (0 heals).
    pub fn set_loss(&mut self, node: NodeId, percent: u8) -> Result<(), ExecError> {
        if percent == 0 {
            self.faults.loss.remove(&node);
        } else {
            self.faults.loss.insert(node, percent.min(100));
        }
        self.install(node)
    }

    /// Heals every network fault: each node's table is deleted.
    pub fn heal(&mut self) -> Result<(), ExecError> {
        self.faults = NetFaults::default();
        self.nodes()
            .into_iter()
            .try_for_each(|node| self.install(node))
    }

    /// Rewrites `node`'s table from the current faults (deletes it when there are none).
    fn install(&self, node: NodeId) -> Result<(), ExecError> {
        if !self.nodes.contains(&node) {
            return Ok(());
        }
        let script = self.nft_script(node);
        let ns = self.namespace(node);
        run_with_input(
            Command::new("ip").args(["netns", "exec", &ns, "nft", "-f", "-"]),
            &script,
        )
        .map(|_| ())
    }

    /// The nft script that makes `node`'s table match the faults: first a no-op create and a
    /// delete (so it works whether or not the table exists), then the rules, if any.
    pub fn nft_script(&self, node: NodeId) -> String {
        let mut script = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
        let dropped: Vec<String> = self
            .faults
            .grudge
            .get(&node)
            .into_iter()
            .flatten()
            .map(|source| self.node_ip(*source).to_string())
            .collect();
        let loss = self.faults.loss.get(&node).copied();
        if dropped.is_empty() && loss.is_none() {
            return script;
        }
        script.push_str(&format!(
            "table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n"
        ));
        if !dropped.is_empty() {
            script.push_str(&format!("    ip saddr {{ {} }} drop\n", dropped.join(", ")));
        }
        if let Some(percent) = loss {
            let peers: Vec<String> = self
                .nodes
                .iter()
                .filter(|&&peer| peer != node)
                .map(|&peer| self.node_ip(peer).to_string())
                .collect();
            if !peers.is_empty() {
                // numgen yields 0..=99, so `< 100` is every packet, which nft refuses to write.
                let sample = if percent >= 100 {
                    String::new()
                } else {
                    format!("numgen random mod 100 < {percent} ")
                };
                script.push_str(&format!(
                    "    ip saddr {{ {} }} {sample}drop\n",
                    peers.join(", ")
                ));
            }
        }
        script.push_str("  }\n}\n");
        script
    }

    /// Leaves the namespaces and bridge in place and releases the net id: what a crashed
    /// harness leaves behind (for tests of [`cleanup`]).
    pub fn abandon(mut self) {
        self.torn_down = true;
        self._lock = None;
    }

    /// Removes the namespaces and the bridge (idempotent).
    pub fn teardown(&mut self) {
        self.remove_all();
        self.torn_down = true;
    }

    fn remove_all(&mut self) {
        for node in self.nodes() {
            self.remove_node(node);
        }
        remove_net(self.net_id);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if !self.torn_down {
            self.teardown();
        }
    }
}

fn namespace_name(net_id: u8, node: NodeId) -> String {
    format!("{PREFIX}{net_id}n{}", node.0)
}

/// Removes every namespace named `pdcKn*` and the bridge `pdcKbr` (veths go with their
/// namespaces).
fn remove_net(net_id: u8) {
    let namespace_prefix = format!("{PREFIX}{net_id}n");
    for ns in list_namespaces() {
        if ns
            .strip_prefix(&namespace_prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        {
            run_quietly("ip", &["netns", "del", &ns]);
        }
    }
    // A namespace whose last process is still exiting outlives `netns del` for a moment, and
    // its veth with it: delete the host ends by name so that the next `create` can add them.
    let veth_prefix = format!("{PREFIX}{net_id}v");
    for line in run("ip", &["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
    {
        let name = line
            .split(':')
            .nth(1)
            .map(str::trim)
            .unwrap_or_default()
            .split('@')
            .next()
            .unwrap_or_default();
        if name
            .strip_prefix(&veth_prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        {
            run_quietly("ip", &["link", "del", name]);
        }
    }
    run_quietly("ip", &["link", "del", &format!("{PREFIX}{net_id}br")]);
}

fn list_namespaces() -> Vec<String> {
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The net ids with a bridge or a namespace of the harness on this host.
pub fn nets_in_use() -> BTreeSet<u8> {
    let mut ids = BTreeSet::new();
    for ns in list_namespaces() {
        if let Some(id) = ns
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('n'))
            .and_then(|(id, _)| id.parse().ok())
        {
            ids.insert(id);
        }
    }
    for line in run("ip", &["-o", "link", "show", "type", "bridge"])
        .unwrap_or_default()
        .lines()
    {
        let name = line
            .split(':')
            .nth(1)
            .map(str::trim)
            .unwrap_or_default()
            .split('@')
            .next()
            .unwrap_or_default();
        if let Some(id) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix("br"))
            .and_then(|id| id.parse().ok())
        {
            ids.insert(id);
        }
    }
    // Any address in 10.77.K.0/24 on the host (another harness's bridge) takes K too.
    for line in run("ip", &["-o", "-4", "addr", "show"])
        .unwrap_or_default()
        .lines()
    {
        if let Some(id) = line
            .split_whitespace()
            .skip_while(|word| *word != "inet")
            .nth(1)
            .and_then(|cidr| cidr.strip_prefix("10.77."))
            .and_then(|rest| rest.split('.').next())
            .and_then(|id| id.parse().ok())
        {
            ids.insert(id);
        }
    }
    ids
}

/// The first net id not in use (no namespace, bridge or address, and no live harness holding
/// its lock), from `from` on.
pub fn free_net_id(from: u8) -> Option<u8> {
    let used = nets_in_use();
    (from..=u8::MAX).find(|id| !used.contains(id) && !held_by_another(*id))
}

/// `perdura-chaos cleanup`: removes every namespace and bridge of the harness (all net ids, or
/// one) that no live harness holds, killing the processes left inside them. Returns what it
/// removed.
pub fn cleanup(only: Option<u8>) -> Vec<u8> {
    let ids: Vec<u8> = nets_in_use()
        .into_iter()
        .filter(|id| only.is_none_or(|only| only == *id))
        .filter(|id| !held_by_another(*id))
        .collect();
    for &id in &ids {
        // Processes still running inside a namespace keep it alive as a mount; kill them first.
        for ns in list_namespaces() {
            if ns.starts_with(&format!("{PREFIX}{id}n"))
                && let Ok(pids) = run("ip", &["netns", "pids", &ns])
            {
                for pid in pids.split_whitespace() {
                    run_quietly("kill", &["-KILL", pid]);
                }
            }
        }
        remove_net(id);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::grudge;

    fn offline(net_id: u8, nodes: &[u64]) -> Network {
        Network {
            net_id,
            _lock: None,
            nodes: nodes.iter().copied().map(NodeId).collect(),
            faults: NetFaults::default(),
            // Never created, so nothing to tear down.
            torn_down: true,
        }
    }

    #[test]
    fn a_healed_node_gets_only_the_table_delete() {
        let net = offline(9, &[1, 2, 3]);
        assert_eq!(
            net.nft_script(NodeId(1)),
            "table inet pdc\ndelete table inet pdc\n"
        );
    }

    #[test]
    fn grudge_and_loss_become_drop_rules_on_the_receiver_only() {
        let mut net = offline(9, &[1, 2, 3]);
        net.faults.grudge = grudge::one_way(NodeId(2), NodeId(1));
        net.faults.loss.insert(NodeId(2), 30);
        let script = net.nft_script(NodeId(2));
        assert!(script.contains("ip saddr { 10.77.9.1 } drop"), "{script}");
        assert!(
            script.contains("ip saddr { 10.77.9.1, 10.77.9.3 } numgen random mod 100 < 30 drop"),
            "{script}"
        );
        assert!(
            !script.contains("10.77.9.254"),
            "harness traffic is never dropped"
        );
        assert!(!net.nft_script(NodeId(1)).contains("drop"));
    }
}
