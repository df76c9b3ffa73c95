//! # perdura-chaos — Jepsen-style chaos testing for Perdura
//!
//! The chaos harness of issue 5 and its I/O-free foundation:
//! * [`history`] — the operation-history model: the JSONL record of every invoke and completion
//!   (`ok` / `fail` / `info`), the paired [`history::History`], and the end-of-run
//!   [`history::FinalRead`] of every node's histories and Raft state.
//! * [`sim`] — the deterministic simulation: the whole cluster in one process under virtual
//!   time, one seed for network, faults, workload and elections (`perdura-chaos sim`).
//! * [`checker`] — one checker per invariant of CHAOS.md §A4, each returning its violations with
//!   a minimal witness; [`checker::check_all`] runs the nine into a JSON-serializable summary.
//! * [`harness`] — the single-host fault harness that produces them (network namespaces, nft
//!   partitions, process and clock faults, the nemesis, `perdura-chaos run`). Unlike the rest of
//!   the crate it does I/O, like [`workload`] and [`lazyfs`].
//! * [`lazyfs`] — our own FUSE filesystem that keeps file writes in memory until fsync and drops
//!   them on command (a power loss), for the `lose-unsynced` nemesis (`perdura-chaos lazyfs`).
//! * [`results`] — the tables of a campaign of runs (`perdura-chaos results`, RESULTS.md).
//! * [`workload`] — the gRPC workload client (starter and worker) that records the history, and
//!   the final read through each node's `ReadReplica` admin RPC.
//!
//! ## Invariants
//! * No I/O, no clock, no randomness in the library outside [`harness`], [`workload`], [`lazyfs`]
//!   and [`sim`] (which runs a cluster under virtual time and one seed): readers and writers are
//!   passed in, time is the harness clock recorded in the history. The checkers are pure
//!   functions of their input.
//! * Input never panics the checkers: malformed lines and unpairable histories are typed errors,
//!   and anything missing from a final read is a finding, not a crash.
//! * Ordering is explicit (`BTreeMap`, sorted vectors), so a report is identical run to run.

pub mod checker;
pub mod harness;
pub mod history;
pub mod ids;
pub mod lazyfs;
pub mod results;
pub mod sim;
pub mod workload;
