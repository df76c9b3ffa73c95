//! The deterministic simulation in CI: many seeds of 3- and 5-node clusters under crashes with
//! loss of unsynced writes, partitions, packet loss and slow links find no violation; and a
//! deliberately broken disk (syncs acknowledged, nothing durable) IS caught; and a seed replays
//! to the same trace, so every failure reproduces from its seed.

use perdura_chaos::checker::Invariant;
use perdura_chaos::sim::{SimConfig, SimReport, run};

fn assert_clean(report: &SimReport) {
    assert!(
        report.summary.valid,
        "seed {} violated an invariant:\n{}\nreproduce: {}",
        report.config.seed,
        report.summary,
        report.config.reproduce_command()
    );
}

fn run_seeds(seeds: std::ops::Range<u64>, nodes: u64, rounds: u64) -> (u64, u64) {
    let mut operations = 0;
    let mut faults = 0;
    for seed in seeds {
        let config = SimConfig {
            rounds,
            ..SimConfig::new(seed, nodes)
        };
        let report = run(config).unwrap_or_else(|e| {
            panic!(
                "seed {seed}: {e}\nreproduce: {}",
                config.reproduce_command()
            )
        });
        assert_clean(&report);
        operations += report.summary.operations as u64;
        faults += report.faults;
    }
    (operations, faults)
}

#[test]
fn seeds_of_three_node_clusters_find_no_violation() {
    let (operations, faults) = run_seeds(0..160, 3, 12);
    assert!(operations > 160 * 15, "{operations} operations");
    assert!(faults > 80, "{faults} fault episodes");
}

#[test]
fn seeds_of_five_node_clusters_find_no_violation() {
    let (operations, faults) = run_seeds(1_000..1_040, 5, 12);
    assert!(operations > 40 * 15, "{operations} operations");
    assert!(faults > 20, "{faults} fault episodes");
}

#[test]
fn a_disk_that_acknowledges_before_sync_is_caught_losing_acked_starts() {
    let config = SimConfig {
        rounds: 20,
        ack_before_sync: true,
        ..SimConfig::new(7, 3)
    };
    let report = run(config).expect("the run completes");
    assert!(!report.summary.valid, "the broken disk went unnoticed");
    let lost_starts = report
        .summary
        .invariants
        .iter()
        .find(|i| i.invariant == Invariant::AckedStartsSurvive)
        .expect("invariant 1 is judged");
    assert!(
        lost_starts.violation_count > 0,
        "invariant 1 reports no lost start:\n{}",
        report.summary
    );
}

/// Every run of a seed must produce the same trace (history + final read): a failure found by
/// one seed is replayed by `reproduce_command`. Seed 1019 of 3 nodes interleaved Raft messages
/// differently from run to run while waiters of tokio's `watch` woke in a random order.
#[test]
fn a_seed_replays_to_the_same_trace() {
    let configs =
        [(1_019, 3), (1, 3), (7, 3), (42, 3), (1_003, 5)].map(|(seed, nodes)| SimConfig {
            rounds: 12,
            ..SimConfig::new(seed, nodes)
        });
    for config in configs {
        let traces: Vec<u64> = (0..3)
            .map(|_| {
                run(config)
                    .unwrap_or_else(|e| panic!("seed {}: {e}", config.seed))
                    .trace_hash
            })
            .collect();
        assert!(
            traces.windows(2).all(|w| w[0] == w[1]),
            "seed {} ({} nodes) gave different traces {traces:016x?}\nreproduce: {}",
            config.seed,
            config.nodes,
            config.reproduce_command()
        );
    }
}

/// Seed 12 of 3 nodes: node 3 led a group, committed and acked a start, and lost power before
/// any follower heard the new commit index. Restarted, it no longer leads (leader restore is
/// off, so it must win a new election) while the followers still named it; every node showed
/// the same applied index, and the end of the run took that for convergence and read a state
/// without the acked start. Convergence now needs a leader by its own account that applied its
/// whole log.
#[test]
fn the_final_read_waits_for_a_leader_that_applied_what_a_crashed_leader_committed() {
    let config = SimConfig {
        rounds: 12,
        ..SimConfig::new(12, 3)
    };
    let report = run(config).expect("the run completes");
    assert!(report.faults > 0, "seed 12 injected no fault");
    assert_clean(&report);
}

/// The seeds that found a stale linearizable read on a leader restarted after a power loss
/// (it resumed leadership from its persisted vote with an older committed index): 1000 and
/// 1261 of 3 nodes, 2085 of 5. Their traces have changed since (the watch-order fix), so the
/// raft test `a_leader_restarted_after_a_power_loss_serves_no_read_older_than_its_acked_writes`
/// is the exact regression; these stay as the seeds that found it.
#[test]
fn the_seeds_that_found_the_stale_read_after_a_power_loss_are_clean() {
    for (seed, nodes) in [(1_000, 3), (1_261, 3), (2_085, 5)] {
        let report = run(SimConfig::new(seed, nodes)).expect("the run completes");
        assert_clean(&report);
    }
}
