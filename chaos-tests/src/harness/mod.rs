//! The single-host chaos harness (CHAOS.md §A3): a real `perdura server start` cluster, one
//! process per network namespace on a bridge, faults injected by a seeded nemesis while a
//! workload records its operations, then heal, convergence, final read and the checkers.
//!
//! * [`exec`] — running host tools with typed errors.
//! * [`net`] — bridge, namespaces, veths; nft grudges and random loss per receiving node.
//! * [`delay`] — the delay fault: a userspace proxy and DNAT rules (no netem here).
//! * [`net_lock`] — which live harness owns a net id (cleanup leaves it alone).
//! * [`grudge`] — partition shapes (isolate, halves, one-way, bridge, majorities ring).
//! * [`node`] — one server process in its namespace: start, SIGKILL, SIGSTOP/SIGCONT, SIGTERM,
//!   libfaketime clock offset, disk faults.
//! * [`disk`] — a node's disk faults: its data dir on its own lazyfs, fsync errors by strace.
//! * [`cluster`] — the members, the network and the `perdura cluster` admin actions.
//! * [`status`] — `perdura cluster status --json`: leaders and convergence.
//! * [`clock`] — the harness clock and the shared history recorder.
//! * [`nemesis`] — the seeded schedule of fault episodes and its execution.
//! * [`workload`] — the workload hook and the built-in start-only workload.
//! * [`grpc_workload`] — the full gRPC workload of [`crate::workload`] behind that hook.
//! * [`final_read`] — the end-of-run read hook and its fallback through the frontend.
//! * [`replica_final_read`] — the final read through every member's `ReadReplica`.
//! * [`run`] — `perdura-chaos run`: everything above, in order, into an output directory.
//! * [`cli`] — the `run` and `cleanup` subcommands.
//!
//! Everything here needs root (namespaces, nft); the pure parts (grudges, nft scripts, the
//! schedule, status decisions) are unit-tested without it.

pub mod cli;
pub mod clock;
pub mod cluster;
pub mod delay;
pub mod disk;
pub mod exec;
pub mod final_read;
pub mod grpc_workload;
pub mod grudge;
pub mod nemesis;
pub mod net;
pub mod net_lock;
pub mod node;
pub mod replica_final_read;
pub mod run;
pub mod status;
pub mod workload;
