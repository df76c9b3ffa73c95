//! The delay fault without netem (missing from this kernel): a userspace TCP proxy in the
//! harness that holds every chunk it relays for a seeded delay (plus jitter), in both
//! directions, and nft DNAT rules in the nodes' namespaces that send their node-to-node
//! connections through it.
//!
//! How a delayed link is built, for a set of delayed nodes D: in the namespace of every member
//! `n`, each new TCP connection `n` opens to a member `m` (peer port or gRPC port) with `n ∈ D`
//! or `m ∈ D` is DNATed to the harness address, port [`proxy_port`]`(m, port)`; the proxy
//! forwards it to `m` from the harness address. Connections that were already established are
//! reset (`reject with tcp reset` on the sender's output), so the nodes reconnect through the
//! proxy at once instead of keeping their direct connections for the whole episode.
//! Clients of the workload (root namespace) are never delayed.
//!
//! Heal: delete the table in every namespace, then stop the proxy; its connections close and
//! the nodes reconnect directly (conntrack keeps an established connection's DNAT, so the proxy
//! must go for the links to come back).
//!
//! Invariants: the rules live in their own table (`ip pdcdelay`), so grudge and loss rewrites
//! never touch them; delivery in one direction of one connection stays in order (a chunk is
//! never delivered before the one read before it); only the episode's nodes are delayed.

use super::exec::{ExecError, run_with_input};
use super::net::Network;
use super::node::{GRPC_PORT, PEER_PORT};
use crate::ids::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

const TABLE: &str = "pdcdelay";
/// The node ports whose connections are delayed.
pub const DELAYED_PORTS: [u16; 2] = [PEER_PORT, GRPC_PORT];
const PROXY_PORT_BASE: u16 = 40_000;

/// How much a delayed link holds each chunk: `delay` plus a uniform `0..=jitter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelaySpec {
    pub delay: Duration,
    pub jitter: Duration,
}

/// The harness port that relays connections to `node`'s `port` (one of [`DELAYED_PORTS`]).
pub fn proxy_port(node: NodeId, port: u16) -> u16 {
    let which = u16::from(port != PEER_PORT);
    // Node ids are 1..=253 (the subnet's hosts): at most 40_000 + 2·253 + 1.
    PROXY_PORT_BASE + (node.0.min(253) as u16) * 2 + which
}

/// The delay table of `node`'s namespace: DNAT of its connections to the delayed members, and
/// a reset of those it already has.
pub fn nat_script(
    net: &Network,
    node: NodeId,
    members: &[NodeId],
    delayed: &BTreeSet<NodeId>,
) -> String {
    let mut script = format!("table ip {TABLE}\ndelete table ip {TABLE}\n");
    let targets: Vec<NodeId> = members
        .iter()
        .copied()
        .filter(|&m| m != node && (delayed.contains(&node) || delayed.contains(&m)))
        .collect();
    if targets.is_empty() {
        return script;
    }
    let harness = net.harness_ip();
    script.push_str(&format!(
        "table ip {TABLE} {{\n  chain nat_out {{\n    type nat hook output priority -100; policy accept;\n"
    ));
    for &target in &targets {
        for port in DELAYED_PORTS {
            script.push_str(&format!(
                "    ip daddr {} tcp dport {port} dnat to {harness}:{}\n",
                net.node_ip(target),
                proxy_port(target, port)
            ));
        }
    }
    let ips: Vec<String> = targets
        .iter()
        .map(|&t| net.node_ip(t).to_string())
        .collect();
    let ports: Vec<String> = DELAYED_PORTS.iter().map(u16::to_string).collect();
    script.push_str(&format!(
        "  }}\n  chain reset_out {{\n    type filter hook output priority 0; policy accept;\n    ip daddr {{ {} }} tcp dport {{ {} }} ct state established reject with tcp reset\n  }}\n}}\n",
        ips.join(", "),
        ports.join(", ")
    ));
    script
}

/// Installs (or, with an empty `delayed`, removes) the delay table in every member's namespace.
pub fn install(
    net: &Network,
    members: &[NodeId],
    delayed: &BTreeSet<NodeId>,
) -> Result<(), ExecError> {
    for &node in members {
        let script = nat_script(net, node, members, delayed);
        run_with_input(
            Command::new("ip").args(["netns", "exec", &net.namespace(node), "nft", "-f", "-"]),
            &script,
        )?;
    }
    Ok(())
}

/// The proxy's (listen, target) pairs: for every member's delayed ports, the harness address and
/// [`proxy_port`] → the member's own address.
pub fn routes(net: &Network, members: &[NodeId]) -> Vec<(SocketAddr, SocketAddr)> {
    members
        .iter()
        .flat_map(|&member| {
            DELAYED_PORTS.map(|port| {
                (
                    SocketAddr::from((net.harness_ip(), proxy_port(member, port))),
                    SocketAddr::from((net.node_ip(member), port)),
                )
            })
        })
        .collect()
}

/// The running proxy of one delay episode; dropping it (or [`DelayProxy::stop`]) closes every
/// listener and relayed connection.
pub struct DelayProxy {
    tasks: JoinSet<()>,
}

impl DelayProxy {
    /// Listens on each route's first address and relays to its second ([`routes`]).
    pub async fn start(
        routes: &[(SocketAddr, SocketAddr)],
        spec: DelaySpec,
        seed: u64,
    ) -> std::io::Result<DelayProxy> {
        let mut tasks = JoinSet::new();
        for &(listen, target) in routes {
            let listener = bind(listen).await?;
            let seed = seed ^ u64::from(listen.port()).wrapping_mul(0x9e37_79b9);
            tasks.spawn(accept_loop(listener, target, spec, seed));
        }
        Ok(DelayProxy { tasks })
    }

    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    // A proxy of the previous episode may still have sockets in TIME_WAIT on these ports.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, spec: DelaySpec, seed: u64) {
    // Connections live in this task's own set: aborting the accept loop drops them all.
    let mut connections = JoinSet::new();
    let mut counter = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { continue };
                counter += 1;
                let seed = seed.wrapping_add(counter.wrapping_mul(0x2545_f491_4f6c_dd1d));
                connections.spawn(relay(inbound, target, spec, seed));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Relays one connection to `target`, both directions delayed.
async fn relay(inbound: TcpStream, target: SocketAddr, spec: DelaySpec, seed: u64) {
    let outbound =
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target)).await {
            Ok(Ok(stream)) => stream,
            _ => return,
        };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let forward = pump(in_read, out_write, spec, StdRng::seed_from_u64(seed));
    let backward = pump(out_read, in_write, spec, StdRng::seed_from_u64(!seed));
    // When one direction ends the connection is over for both: dropping the other closes it.
    tokio::select! {
        _ = forward => {}
        _ = backward => {}
    }
}

/// Copies `from` → `to`, each chunk held until `delay + jitter` after it was read, in order.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    spec: DelaySpec,
    mut rng: StdRng,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let jitter_ms = spec.jitter.as_millis() as u64;
    let reader = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut last = Instant::now();
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let jitter = Duration::from_millis(rng.random_range(0..=jitter_ms));
            // Never before the chunk read earlier: one stream stays in order.
            let due = (Instant::now() + spec.delay + jitter).max(last);
            last = due;
            if tx.send((due, buffer[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// The seeded choice of an episode: 20–300 ms, jitter up to a quarter of it.
pub fn choose_spec(rng: &mut StdRng) -> DelaySpec {
    let delay = rng.random_range(20..=300u64);
    DelaySpec {
        delay: Duration::from_millis(delay),
        jitter: Duration::from_millis(rng.random_range(0..=delay / 4)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_port_has_its_own_proxy_port() {
        let mut seen = BTreeSet::new();
        for node in 1..=253u64 {
            for port in DELAYED_PORTS {
                assert!(seen.insert(proxy_port(NodeId(node), port)));
            }
        }
    }

    #[tokio::test]
    async fn a_relayed_connection_arrives_late_in_both_directions_and_in_order() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                if n == 0 {
                    return;
                }
                socket.write_all(&buffer[..n]).await.unwrap();
            }
        });
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let spec = DelaySpec {
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(20),
        };
        let relay_task = tokio::spawn(accept_loop(proxy, echo_addr, spec, 7));
        let mut client = TcpStream::connect(proxy_addr).await.unwrap();
        let started = std::time::Instant::now();
        let mut received = Vec::new();
        for i in 0..20u8 {
            client.write_all(&[i]).await.unwrap();
        }
        while received.len() < 20 {
            let mut buffer = [0u8; 64];
            let n = client.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the proxy closed early");
            received.extend_from_slice(&buffer[..n]);
        }
        let elapsed = started.elapsed();
        assert_eq!(
            received,
            (0..20u8).collect::<Vec<_>>(),
            "in order, nothing lost"
        );
        assert!(
            elapsed >= Duration::from_millis(200),
            "two delayed hops of ≥ 100 ms each, got {elapsed:?}"
        );
        relay_task.abort();
    }
}
