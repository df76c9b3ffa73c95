//! The harness's network on the real kernel: namespaces and a bridge are created and torn down,
//! a grudge drops node-to-node traffic while the harness still reaches every node, random loss at
//! 100% drops everything, and heal restores traffic. Needs root (as CI runs); skipped otherwise.

use perdura_chaos::harness::exec::is_root;
use perdura_chaos::harness::grudge;
use perdura_chaos::harness::net::{self, Network};
use perdura_chaos::ids::NodeId;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 5999;

fn skip() -> bool {
    if !is_root() {
        eprintln!("skipped: the harness network needs root");
        return true;
    }
    false
}

/// A TCP listener inside `node`'s namespace that accepts forever.
struct Listener(Child);

impl Listener {
    fn start(net: &Network, node: NodeId) -> Listener {
        let script = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{}',{PORT}))\ns.listen(64)\nwhile True:\n    c,_=s.accept()\n    c.close()\n",
            net.node_ip(node)
        );
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.namespace(node),
                "python3",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the listener");
        let listener = Listener(child);
        let addr = SocketAddr::from((net.node_ip(node), PORT));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err() {
            assert!(
                Instant::now() < deadline,
                "listener on {addr} never came up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        listener
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a TCP connection from `from`'s namespace to `to`'s listener succeeds within 1 s.
fn node_reaches(net: &Network, from: NodeId, to: NodeId) -> bool {
    let script = format!(
        "import socket\nsocket.create_connection(('{}',{PORT}),timeout=1).close()",
        net.node_ip(to)
    );
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.namespace(from),
            "python3",
            "-c",
            &script,
        ])
        .stderr(Stdio::null())
        .status()
        .expect("run the probe")
        .success()
}

fn harness_reaches(net: &Network, to: NodeId) -> bool {
    let addr = SocketAddr::from((net.node_ip(to), PORT));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

fn namespaces() -> String {
    String::from_utf8(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

#[test]
fn partitions_drop_node_traffic_and_heal_restores_it() {
    if skip() {
        return;
    }
    let id = net::free_net_id(210).expect("a free net id");
    let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
    let mut net = Network::create(id, &[n1, n2, n3]).expect("create the network");
    assert!(namespaces().contains(&net.namespace(n3)));
    let listener = Listener::start(&net, n2);
    assert!(node_reaches(&net, n1, n2), "healthy network: n1 reaches n2");
    assert!(node_reaches(&net, n3, n2));

    net.set_grudge(grudge::isolate(n2, &[n1, n2, n3])).unwrap();
    assert!(!node_reaches(&net, n1, n2), "isolated: n1 cannot reach n2");
    assert!(!node_reaches(&net, n3, n2), "isolated: n3 cannot reach n2");
    assert!(
        harness_reaches(&net, n2),
        "the harness still reaches an isolated node"
    );

    net.set_grudge(grudge::one_way(n2, n1)).unwrap();
    assert!(!node_reaches(&net, n1, n2), "n2 drops n1's packets");
    assert!(node_reaches(&net, n3, n2), "n3 is not in the grudge");

    net.heal().unwrap();
    assert!(node_reaches(&net, n1, n2), "healed: n1 reaches n2 again");

    net.set_loss(n2, 100).unwrap();
    assert!(!node_reaches(&net, n3, n2), "100% loss into n2");
    assert!(
        harness_reaches(&net, n2),
        "loss never applies to the harness"
    );
    net.set_loss(n2, 0).unwrap();
    assert!(node_reaches(&net, n3, n2), "loss healed");

    drop(listener);
    let names: Vec<String> = [n1, n2, n3].iter().map(|&n| net.namespace(n)).collect();
    net.teardown();
    let left = namespaces();
    for name in names {
        assert!(!left.contains(&name), "{name} left behind: {left}");
    }
    assert!(!net::nets_in_use().contains(&id));
}

#[test]
fn cleanup_removes_what_a_crashed_run_left() {
    if skip() {
        return;
    }
    let id = net::free_net_id(230).expect("a free net id");
    let live = net::free_net_id(id + 1).expect("another free net id");
    let running = Network::create(live, &[NodeId(1)]).expect("a live run's network");
    let net = Network::create(id, &[NodeId(1), NodeId(2)]).expect("create the network");
    // A crash: nothing runs the network's teardown, and the net id's lock goes with the process.
    net.abandon();
    assert!(net::nets_in_use().contains(&id));
    let removed = net::cleanup(None);
    assert!(
        removed.contains(&id) && !removed.contains(&live),
        "cleanup removes the crashed run's net and leaves the live one alone: {removed:?}"
    );
    assert!(
        net::nets_in_use().contains(&live),
        "the live run keeps its net"
    );
    drop(running);
    let net = Network::create(id, &[NodeId(1), NodeId(2)]).expect("create the network");
    net.abandon();
    assert_eq!(net::cleanup(Some(id)), vec![id]);
    assert!(!net::nets_in_use().contains(&id));
}

/// An echo server on `port` inside `node`'s namespace.
fn start_echo(net: &Network, node: NodeId, port: u16) -> Listener {
    let script = format!(
        "import socket,threading\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{}',{port}))\ns.listen(64)\ndef serve(c):\n    while True:\n        d=c.recv(4096)\n        if not d: return\n        c.sendall(d)\nwhile True:\n    c,_=s.accept()\n    threading.Thread(target=serve,args=(c,),daemon=True).start()\n",
        net.node_ip(node)
    );
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.namespace(node),
            "python3",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn the echo server");
    let addr = SocketAddr::from((net.node_ip(node), port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err() {
        assert!(Instant::now() < deadline, "echo on {addr} never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    Listener(child)
}

/// The round trip (ms) of one byte from `from`'s namespace to `to`'s echo server on `port`,
/// measured after the connection is up.
fn round_trip_ms(net: &Network, from: NodeId, to: NodeId, port: u16) -> f64 {
    let script = format!(
        "import socket,time\nc=socket.create_connection(('{}',{port}),timeout=5)\nc.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\nt=time.monotonic()\nc.sendall(b'x')\nassert c.recv(1)==b'x'\nprint((time.monotonic()-t)*1000)\n",
        net.node_ip(to)
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.namespace(from),
            "python3",
            "-c",
            &script,
        ])
        .output()
        .expect("run the probe");
    assert!(out.status.success(), "probe failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_slows_node_to_node_round_trips_and_heal_restores_them() {
    use perdura_chaos::harness::delay::{self, DelayProxy, DelaySpec};
    use perdura_chaos::harness::node::PEER_PORT;
    use std::collections::BTreeSet;
    use std::sync::Arc;
    if skip() {
        return;
    }
    let id = net::free_net_id(220).expect("a free net id");
    let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
    let members = [n1, n2, n3];
    let net = Arc::new(std::sync::Mutex::new(
        Network::create(id, &members).expect("create the network"),
    ));
    let echo = start_echo(&net.lock().unwrap(), n2, PEER_PORT);
    let probe = |from: NodeId| {
        let net = net.clone();
        tokio::task::spawn_blocking(move || {
            round_trip_ms(&net.lock().unwrap(), from, n2, PEER_PORT)
        })
    };
    let before = probe(n1).await.unwrap();
    assert!(before < 100.0, "healthy round trip {before} ms");

    let spec = DelaySpec {
        delay: Duration::from_millis(150),
        jitter: Duration::ZERO,
    };
    let routes = delay::routes(&net.lock().unwrap(), &members);
    let proxy = DelayProxy::start(&routes, spec, 1)
        .await
        .expect("start the proxy");
    delay::install(&net.lock().unwrap(), &members, &BTreeSet::from([n2])).expect("install");
    let delayed = probe(n1).await.unwrap();
    assert!(
        delayed >= 290.0,
        "a link into a delayed node holds each direction 150 ms: {delayed} ms"
    );
    let third = probe(n3).await.unwrap();
    assert!(third >= 290.0, "every member's link to it: {third} ms");

    delay::install(&net.lock().unwrap(), &members, &BTreeSet::new()).expect("remove");
    proxy.stop();
    let after = probe(n1).await.unwrap();
    assert!(after < 100.0, "healed round trip {after} ms");
    drop(echo);
    net.lock().unwrap().teardown();
}
