"""A three-node Perdura cluster of real `perdura server start` processes on 127.0.0.1.

`Cluster` owns the nodes: free ports (gRPC, peer, metrics) per node, one data dir per node that
survives restarts, kill -9 / graceful stop / restart of a single node, readiness, and what the
tests need to observe the cluster from outside:

* leaders(): which node leads each Raft group. Taken from `perdura cluster status --json` when
  the binary has that command, otherwise from each node's `/metrics` gauge
  `perdura_raft_is_leader{group="N"}` (every node reports only its own leadership, so the union
  over the live nodes is the leader map).
* applied_indexes(): each live node's applied log index per group (`perdura_raft_applied_index`).
* digests(): each live node's state digest per group (`perdura cluster status --json`), or None
  if nothing exposes one.
* new_node() / retire(): a fresh node that joins the running cluster (`--join`), and forgetting
  a removed one (`perdura cluster add-node / remove-node` do the membership change).

The binary is `$PERDURA_BIN`, default `$CARGO_TARGET_DIR/debug/perdura` (what tests/run-all.sh
builds). `PERDURA_CLUSTER_GROUPS` (default 8) sets `--groups`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from typing import Dict, List, Optional

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

NAMESPACE = "default"

# Process groups started here: SIGKILLed at interpreter exit so an interrupted test leaves no
# server behind (tests/sdk-python/harness.py does the same for its processes).
LIVE_GROUPS: set = set()


def perdura_bin() -> str:
    explicit = os.environ.get("PERDURA_BIN", "").strip()
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/perdura-target")
    return os.path.join(target, "debug", "perdura")


def groups_count() -> int:
    return int(os.environ.get("PERDURA_CLUSTER_GROUPS", "8"))


_PORT_LOW, _PORT_SPAN = 20000, 12000
_ports_handed_out = 0


def free_ports(n: int) -> List[int]:
    """n ports for servers: bindable now, never handed out twice by this process, and below the
    kernel's ephemeral range (32768-60999 by default). A port from that range (what binding
    port 0 gives) can become an outgoing connection's source port -- a peer's, a client's --
    before the node binds it, and that node never comes up. Each process starts at its own
    offset in the range."""
    global _ports_handed_out
    offset = (os.getpid() * 2654435761) % _PORT_SPAN
    ports: List[int] = []
    while len(ports) < n:
        if _ports_handed_out >= _PORT_SPAN:
            raise RuntimeError("every port below the ephemeral range was handed out")
        port = _PORT_LOW + (offset + _ports_handed_out) % _PORT_SPAN
        _ports_handed_out += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


def tail(path: str, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read().decode(errors="replace").splitlines()
        return "\n".join(data[-lines:])
    except FileNotFoundError:
        return f"(no file {path})"


_METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> List[tuple]:
    """Prometheus text format → [(name, {label: value}, float)]."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(3))))
        except ValueError:
            continue
    return out


class Node:
    """One `perdura server start` process with a fixed ID, ports and data dir."""

    def __init__(self, node_id: int, workdir: str, grpc_port: int, peer_port: int, metrics_port: int):
        self.node_id = node_id
        self.workdir = workdir
        self.grpc_port = grpc_port
        self.peer_port = peer_port
        self.metrics_port = metrics_port
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "node.log")
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.initial_cluster = ""
        # `--join PEER_ADDR` for a fresh node added to a running cluster (instead of bootstrapping
        # from `--initial-cluster`).
        self.join: Optional[str] = None
        self.groups = groups_count()
        os.makedirs(workdir, exist_ok=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def peer_address(self) -> str:
        return f"127.0.0.1:{self.peer_port}"

    def __repr__(self) -> str:
        return f"node{self.node_id}({self.address})"

    def argv(self) -> List[str]:
        membership = (["--join", self.join] if self.join
                      else ["--initial-cluster", self.initial_cluster])
        return [
            perdura_bin(), "server", "start",
            "--node-id", str(self.node_id),
            "--data-dir", self.data_dir,
            "--grpc-addr", self.address,
            "--peer-addr", self.peer_address,
            *membership,
            "--groups", str(self.groups),
            "--metrics-addr", f"127.0.0.1:{self.metrics_port}",
            "--log-level", os.environ.get("PERDURA_SERVER_LOG_LEVEL", "info"),
        ]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        assert not self.alive(), f"{self} is already running"
        argv = self.argv()
        if not os.path.exists(argv[0]):
            raise RuntimeError(f"server binary {argv[0]} does not exist: build it (cargo build "
                               f"--workspace) or set PERDURA_BIN")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')}: "
                      f"{shlex.join(argv)}\n".encode())
            log.flush()
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        LIVE_GROUPS.add(self.proc.pid)

    def kill9(self) -> None:
        """SIGKILL: the process dies at once, with whatever it had not yet fsynced."""
        if not self.alive():
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        LIVE_GROUPS.discard(self.proc.pid)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM and wait for a clean exit (SIGKILL after `grace` seconds)."""
        if not self.alive():
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=grace)
            LIVE_GROUPS.discard(self.proc.pid)
        except subprocess.TimeoutExpired:
            self.kill9()
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)

    def metrics(self, timeout: float = 2.0) -> Optional[List[tuple]]:
        """The node's /metrics, parsed; None if it does not answer."""
        if not self.alive():
            return None
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return parse_metrics(r.read().decode(errors="replace"))
        except OSError:
            return None

    def cli(self, *args: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
        """`perdura cluster ARGS --addr <this node's gRPC address>`."""
        return subprocess.run([perdura_bin(), "cluster", *args, "--addr", self.address],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


def has_cluster_cli() -> bool:
    """Whether the binary has `perdura cluster status` (the membership commands)."""
    try:
        r = subprocess.run([perdura_bin(), "cluster", "status", "--help"], capture_output=True,
                           text=True, timeout=15, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and "--addr" in r.stdout


class Cluster:
    """Three nodes (IDs 1..3) bootstrapped together from one `--initial-cluster`."""

    def __init__(self, workdir: str, size: int = 3):
        self.workdir = workdir
        ports = free_ports(3 * size)
        self.nodes: Dict[int, Node] = {}
        for i in range(size):
            node_id = i + 1
            self.nodes[node_id] = Node(node_id, os.path.join(workdir, f"node{node_id}"),
                                       *ports[3 * i:3 * i + 3])
        initial = ",".join(f"{n.node_id}={n.peer_address}" for n in self.nodes.values())
        for n in self.nodes.values():
            n.initial_cluster = initial
        self.groups = groups_count()
        self._cluster_cli: Optional[bool] = None
        # IDs of removed nodes (never reused).
        self.retired: set = set()

    # ------------------------------------------------------------------ lifecycle

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def new_node(self, join_via: Node) -> Node:
        """A fresh node (next unused ID, new ports, empty data dir) that will join the running
        cluster through `join_via`'s peer address when spawned; a member of `nodes` from now on
        (add it with `perdura cluster add-node`)."""
        node_id = max(self.nodes) + 1
        while node_id in self.retired:
            node_id += 1
        node = Node(node_id, os.path.join(self.workdir, f"node{node_id}"), *free_ports(3))
        node.join = join_via.peer_address
        self.nodes[node_id] = node
        return node

    def retire(self, node: Node) -> None:
        """Forgets a node removed from the cluster (`perdura cluster remove-node`); it must
        not be running."""
        assert not node.alive(), f"{node} is still running"
        del self.nodes[node.node_id]
        self.retired.add(node.node_id)

    def live(self) -> List[Node]:
        return [n for n in self.nodes.values() if n.alive()]

    async def start(self, timeout: float = 90.0) -> None:
        for n in self.nodes.values():
            n.spawn()
        await self.wait_serving(timeout)

    async def restart(self, node: Node, timeout: float = 90.0) -> None:
        node.spawn()
        await self.wait_node_serving(node, timeout)

    def kill9(self, node: Node) -> float:
        """SIGKILLs the node; returns the monotonic time of the kill."""
        node.kill9()
        return time.monotonic()

    def stop_all(self) -> None:
        for n in self.nodes.values():
            n.stop()

    def kill_all(self) -> None:
        for n in self.nodes.values():
            n.kill9()

    async def client(self, node: Node, timeout: float = 10.0) -> Client:
        return await asyncio.wait_for(Client.connect(node.address, namespace=NAMESPACE), timeout)

    async def wait_node_serving(self, node: Node, timeout: float = 90.0) -> Client:
        """Until the node answers the API and can read the namespace (a linearizable read of the
        meta group, so the node is connected to the meta group's leader)."""
        deadline = time.monotonic() + timeout
        last: Optional[BaseException] = None
        while time.monotonic() < deadline:
            if not node.alive():
                raise RuntimeError(f"{node} exited with code {node.proc.returncode} before serving; "
                                   f"log tail:\n{node.log_tail()}")
            try:
                client = await self.client(node, timeout=5)
                await asyncio.wait_for(self._ensure_namespace(client), 10)
                return client
            except Exception as e:  # noqa: BLE001 - retry until the deadline
                last = e
                await asyncio.sleep(0.3)
        raise RuntimeError(f"{node} not serving after {timeout}s (last error: {last!r}); "
                           f"log tail:\n{node.log_tail()}")

    async def wait_serving(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        for n in self.nodes.values():
            await self.wait_node_serving(n, max(1.0, deadline - time.monotonic()))
        if self.exports_metrics():
            await self.wait_all_leaders(max(1.0, deadline - time.monotonic()))

    def exports_metrics(self) -> bool:
        """Whether any live node serves /metrics (a build without the exporter does not)."""
        return any(n.metrics() is not None for n in self.live())

    @staticmethod
    async def _ensure_namespace(client: Client) -> None:
        from temporalio.api.workflowservice.v1 import (DescribeNamespaceRequest,
                                                        RegisterNamespaceRequest)

        try:
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=NAMESPACE))
            return
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
        try:
            await client.workflow_service.register_namespace(RegisterNamespaceRequest(namespace=NAMESPACE))
        except RPCError as e:
            if e.status != RPCStatusCode.ALREADY_EXISTS:
                raise

    # ------------------------------------------------------------------ observation

    def cluster_cli(self) -> bool:
        if self._cluster_cli is None:
            self._cluster_cli = has_cluster_cli()
        return self._cluster_cli

    def status(self, via: Optional[Node] = None) -> Optional[dict]:
        """`perdura cluster status --json` through a live node; None without the command or if no
        live node answers."""
        if not self.cluster_cli():
            return None
        for n in ([via] if via else []) + self.live():
            try:
                r = n.cli("status", "--json")
            except subprocess.TimeoutExpired:
                continue
            if r.returncode == 0:
                try:
                    return json.loads(r.stdout)
                except ValueError:
                    continue
        return None

    def leaders(self) -> Dict[int, int]:
        """group → node ID of its leader, as far as the live nodes know; groups without a known
        leader among the live nodes are missing."""
        out: Dict[int, int] = {}
        for n in self.live():
            for name, labels, value in n.metrics() or []:
                if name == "perdura_raft_is_leader" and value == 1.0 and "group" in labels:
                    out[int(labels["group"])] = n.node_id
        return out

    def applied_indexes(self) -> Dict[int, Dict[int, int]]:
        """node ID → {group → applied index} for every live node that answers."""
        out: Dict[int, Dict[int, int]] = {}
        for n in self.live():
            for name, labels, value in n.metrics() or []:
                if name == "perdura_raft_applied_index" and "group" in labels:
                    out.setdefault(n.node_id, {})[int(labels["group"])] = int(value)
        return out

    def all_groups(self) -> List[int]:
        """The meta group 0 and every workflow group: 1..=G plus the groups split off since
        (as `perdura cluster status` lists them)."""
        groups = set(range(0, self.groups + 1))
        status = self.status()
        if status is not None:
            groups |= {g["group"] for g in status["groups"]}
        return sorted(groups)

    def most_leading_node(self) -> Node:
        leaders = self.leaders()
        counts: Dict[int, int] = {}
        for node_id in leaders.values():
            counts[node_id] = counts.get(node_id, 0) + 1
        best = max(sorted(counts), key=lambda k: counts[k])
        return self.nodes[best]

    async def wait_all_leaders(self, timeout: float, interval: float = 0.1) -> float:
        """Until every group has a leader on a live node; returns the seconds it took."""
        t0 = time.monotonic()
        want = set(self.all_groups())
        live = {n.node_id for n in self.live()}
        while True:
            leaders = self.leaders()
            if want <= set(leaders) and set(leaders.values()) <= live:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"groups without a live leader after {timeout}s: "
                                     f"{sorted(want - set(leaders))}; leaders {leaders}")
            await asyncio.sleep(interval)

    def digests(self) -> Optional[Dict[int, Dict[int, str]]]:
        """node ID → {group → state digest} of every replica that answered
        `perdura cluster status --json`, or None if the binary has no such command."""
        status = self.status()
        if status is None:
            return None
        out: Dict[int, Dict[int, str]] = {}
        for group in status["groups"]:
            for replica in group["replicas"]:
                if replica.get("digest"):
                    out.setdefault(replica["node"], {})[group["group"]] = replica["digest"]
        return out

    async def wait_converged(self, timeout: float) -> Dict[int, Dict[int, int]]:
        """Until every node is alive and all of them have applied the same log index in every
        group, and report the same per-group digest where digests are exposed. Returns the applied
        indexes (node → group → index)."""
        deadline = time.monotonic() + timeout
        want = set(self.all_groups())
        while True:
            applied = self.applied_indexes()
            digests = self.digests()
            same_index = (set(applied) == set(self.nodes)
                          and all(set(a) >= want for a in applied.values())
                          and all(len({applied[n][g] for n in applied}) == 1 for g in want))
            same_digest = digests is None or (
                set(digests) == set(self.nodes)
                and all(len({digests[n].get(g) for n in digests}) == 1 for g in want))
            if same_index and same_digest:
                return applied
            if time.monotonic() > deadline:
                raise AssertionError(f"replicas did not converge within {timeout}s: applied "
                                     f"{applied}, digests {digests}")
            await asyncio.sleep(0.5)

    async def wait_caught_up(self, node: Node, timeout: float) -> float:
        """Until `node` has applied, in every group, at least what the other live nodes had
        applied when this was called (it caught up with the past, while load goes on).
        Returns the seconds it took."""
        t0 = time.monotonic()
        applied = self.applied_indexes()
        target: Dict[int, int] = {}
        for node_id, groups in applied.items():
            if node_id != node.node_id:
                for g, index in groups.items():
                    target[g] = max(target.get(g, 0), index)
        assert set(target) >= set(self.all_groups()), f"no applied indexes from the others: {applied}"
        while True:
            mine = self.applied_indexes().get(node.node_id, {})
            behind = {g: (mine.get(g), i) for g, i in target.items() if mine.get(g, -1) < i}
            if not behind:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{node} did not catch up within {timeout}s: group: "
                                     f"(applied, target) {behind}")
            await asyncio.sleep(0.2)

    def log_tails(self, lines: int = 60) -> str:
        return "\n".join(f"---- {n} log tail ----\n{n.log_tail(lines)}" for n in self.nodes.values())
