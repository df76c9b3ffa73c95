//! Tabulating a chaos campaign (`perdura-chaos results <run dir>…`): the tables of
//! `chaos-tests/RESULTS.md` — per fault type, runs × episodes × operations × violations; per
//! invariant, what was judged and violated; per run, its seed, command and verdict.
//!
//! Pure: the caller reads each run directory (`summary.json`, `history.jsonl`, `rc.txt`) and
//! passes them in; [`RunResult::from_run`] and [`render`] do no I/O.
//!
//! Counting rules:
//! * An *episode* is a nemesis inject that was installed (`ok`, or `info`: possibly installed).
//!   Skipped injects (`fail`) are not counted.
//! * An episode's *operations* are the client operations invoked between its inject's invoke
//!   and the completion of the next heal (or the end of the history): what ran under the fault.
//! * Violations are per run (the checkers judge a run as a whole); the fault table shows the
//!   violations of the runs in which the fault occurred.

use crate::history::{FaultKind, History, NemesisAction, Op, OpType};
use crate::ids::HarnessNanos;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One episode of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpisodeCount {
    /// The harness's fault name (`isolate-leader`, `kill`, …).
    pub fault: String,
    pub operations: u64,
}

/// One invariant of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantCount {
    pub number: u64,
    pub title: String,
    pub judged: u64,
    pub violations: u64,
}

/// What one run came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    pub name: String,
    pub nodes: u64,
    pub seed: u64,
    pub duration_s: u64,
    pub reproduction: String,
    /// `perdura-chaos run`'s exit status, if recorded.
    pub exit: Option<i32>,
    pub converged: bool,
    pub valid: bool,
    pub operations: u64,
    pub episodes: Vec<EpisodeCount>,
    pub invariants: Vec<InvariantCount>,
}

fn u(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl RunResult {
    /// Builds the result of the run `name` from its `summary.json` (as JSON), its paired
    /// history and its exit status.
    pub fn from_run(name: &str, summary: &Value, history: &History, exit: Option<i32>) -> Self {
        let check = summary.get("check").filter(|c| !c.is_null());
        let invariants = check
            .and_then(|c| c.get("invariants"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|i| InvariantCount {
                        number: u(i, "number"),
                        title: i
                            .get("title")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        judged: u(i, "judged"),
                        violations: u(i, "violation_count"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The harness names of the installed episodes, in order (summary.json), matched with
        // the inject operations of the history, in order.
        let names: Vec<String> = summary
            .get("episodes")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter(|e| {
                        !e.get("inject")
                            .and_then(Value::as_str)
                            .is_some_and(|i| i.starts_with("skipped"))
                    })
                    .filter_map(|e| e.get("fault").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        RunResult {
            name: name.to_owned(),
            nodes: u(summary, "nodes"),
            seed: u(summary, "seed"),
            duration_s: u(summary, "duration_s"),
            reproduction: summary
                .get("reproduction")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            exit,
            converged: summary.get("not_converged").is_none_or(Value::is_null),
            valid: summary
                .get("valid")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            operations: check.map_or(0, |c| u(c, "operations")),
            episodes: episodes(history, &names),
            invariants,
        }
    }

    pub fn violations(&self) -> u64 {
        self.invariants.iter().map(|i| i.violations).sum()
    }
}

/// The installed episodes of `history` with the client operations invoked under each.
/// `names[i]` names the i-th installed episode (else the history's fault kind is used). A
/// rolling restart is one episode made of one inject/heal pair per member, in a row.
fn episodes(history: &History, names: &[String]) -> Vec<EpisodeCount> {
    let ops = &history.operations;
    // (kind, start, end) of each installed episode.
    let mut windows: Vec<(Option<FaultKind>, HarnessNanos, HarnessNanos)> = Vec::new();
    let mut previous_kind = None;
    for (i, op) in ops.iter().enumerate() {
        let Op::Nemesis(nemesis) = &op.f else {
            continue;
        };
        if nemesis.action != NemesisAction::Inject {
            continue;
        }
        let installed = op
            .completion
            .as_ref()
            .is_some_and(|c| matches!(c.op_type, OpType::Ok | OpType::Info));
        let end = ops[i + 1..]
            .iter()
            .find(|later| {
                matches!(&later.f, Op::Nemesis(n)
                    if matches!(n.action, NemesisAction::Heal | NemesisAction::HealAll))
            })
            .map(|heal| heal.complete_ns().unwrap_or(heal.invoke_ns))
            .unwrap_or(history.end_ns());
        let continues_rolling_restart = nemesis.fault == Some(FaultKind::RollingRestart)
            && previous_kind == Some(FaultKind::RollingRestart);
        previous_kind = nemesis.fault;
        match windows.last_mut() {
            Some(last) if continues_rolling_restart => last.2 = end,
            _ if installed => windows.push((nemesis.fault, op.invoke_ns, end)),
            _ => {}
        }
    }
    windows
        .into_iter()
        .enumerate()
        .map(|(i, (kind, start, end))| EpisodeCount {
            fault: names
                .get(i)
                .cloned()
                .unwrap_or_else(|| kind.map_or_else(|| "unknown".to_owned(), |f| format!("{f:?}"))),
            operations: ops
                .iter()
                .filter(|o| !o.f.is_nemesis() && o.invoke_ns >= start && o.invoke_ns <= end)
                .count() as u64,
        })
        .collect()
}

#[derive(Default)]
struct FaultRow {
    runs: u64,
    runs_3: u64,
    runs_5: u64,
    episodes_3: u64,
    episodes_5: u64,
    operations: u64,
    violations: u64,
}

/// The markdown tables of a campaign.
pub fn render(runs: &[RunResult]) -> String {
    let mut out = String::new();
    let mut faults: BTreeMap<&str, FaultRow> = BTreeMap::new();
    for run in runs {
        let mut seen = std::collections::BTreeSet::new();
        for episode in &run.episodes {
            let row = faults.entry(&episode.fault).or_default();
            if seen.insert(episode.fault.as_str()) {
                row.runs += 1;
                if run.nodes >= 5 {
                    row.runs_5 += 1;
                } else {
                    row.runs_3 += 1;
                }
                row.violations += run.violations();
            }
            if run.nodes >= 5 {
                row.episodes_5 += 1;
            } else {
                row.episodes_3 += 1;
            }
            row.operations += episode.operations;
        }
    }
    let total_episodes: u64 = runs.iter().map(|r| r.episodes.len() as u64).sum();
    let total_ops: u64 = runs.iter().map(|r| r.operations).sum();
    let total_violations: u64 = runs.iter().map(RunResult::violations).sum();
    let _ = writeln!(
        out,
        "{} runs, {} fault episodes ({} on 3 nodes, {} on 5), {} operations, {} violations, {} runs not valid.\n",
        runs.len(),
        total_episodes,
        runs.iter()
            .filter(|r| r.nodes < 5)
            .map(|r| r.episodes.len() as u64)
            .sum::<u64>(),
        runs.iter()
            .filter(|r| r.nodes >= 5)
            .map(|r| r.episodes.len() as u64)
            .sum::<u64>(),
        total_ops,
        total_violations,
        runs.iter().filter(|r| !r.valid).count()
    );
    out.push_str("### By fault type\n\n");
    out.push_str(
        "| fault | runs (3 / 5 nodes) | episodes on 3 nodes | episodes on 5 nodes | operations under the fault | violations in those runs |\n|---|---|---|---|---|---|\n",
    );
    for (fault, row) in &faults {
        let _ = writeln!(
            out,
            "| {fault} | {} ({} / {}) | {} | {} | {} | {} |",
            row.runs,
            row.runs_3,
            row.runs_5,
            row.episodes_3,
            row.episodes_5,
            row.operations,
            row.violations
        );
    }
    out.push_str(
        "\n### By invariant\n\n| # | invariant | judged | violations |\n|---|---|---|---|\n",
    );
    let mut invariants: BTreeMap<u64, InvariantCount> = BTreeMap::new();
    for invariant in runs.iter().flat_map(|r| &r.invariants) {
        let row = invariants
            .entry(invariant.number)
            .or_insert_with(|| InvariantCount {
                judged: 0,
                violations: 0,
                ..invariant.clone()
            });
        row.judged += invariant.judged;
        row.violations += invariant.violations;
    }
    for row in invariants.values() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.number, row.title, row.judged, row.violations
        );
    }
    out.push_str("\n### By run\n\n| run | nodes | seed | s | episodes | operations | violations | verdict | command |\n|---|---|---|---|---|---|---|---|---|\n");
    for run in runs {
        let verdict = match (run.valid, run.converged, run.exit) {
            (true, _, _) => "valid".to_owned(),
            (false, false, _) => "NOT CONVERGED".to_owned(),
            (false, true, Some(2)) => "harness failed".to_owned(),
            (false, true, _) => "INVALID".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | `{}` |",
            run.name,
            run.nodes,
            run.seed,
            run.duration_s,
            run.episodes.len(),
            run.operations,
            run.violations(),
            verdict,
            run.reproduction
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::read_history;

    const HISTORY: &str = r#"{"process":1000000,"index":0,"type":"invoke","f":{"name":"nemesis","action":"inject","fault":"kill","nodes":[1]},"time_ns":10}
{"process":1000000,"index":0,"type":"ok","f":{"name":"nemesis","action":"inject","fault":"kill","nodes":[1]},"time_ns":20}
{"process":0,"index":0,"type":"invoke","f":{"name":"start_workflow","workflow_id":"w1","request_id":"r1"},"node":2,"time_ns":30}
{"process":0,"index":0,"type":"ok","f":{"name":"start_workflow","workflow_id":"w1","request_id":"r1"},"value":{"kind":"started","run_id":"a"},"node":2,"time_ns":40}
{"process":1000000,"index":1,"type":"invoke","f":{"name":"nemesis","action":"heal","fault":"kill","nodes":[1]},"time_ns":50}
{"process":1000000,"index":1,"type":"ok","f":{"name":"nemesis","action":"heal","fault":"kill","nodes":[1]},"time_ns":60}
{"process":0,"index":1,"type":"invoke","f":{"name":"start_workflow","workflow_id":"w2","request_id":"r2"},"node":2,"time_ns":70}
{"process":0,"index":1,"type":"ok","f":{"name":"start_workflow","workflow_id":"w2","request_id":"r2"},"value":{"kind":"started","run_id":"b"},"node":2,"time_ns":80}
{"process":1000000,"index":2,"type":"invoke","f":{"name":"nemesis","action":"inject","fault":"isolate","nodes":[3]},"time_ns":90}
{"process":1000000,"index":2,"type":"fail","f":{"name":"nemesis","action":"inject","fault":"isolate","nodes":[3]},"time_ns":95}
"#;

    fn run(nodes: u64, violations: u64) -> RunResult {
        let history = History::from_records(read_history(HISTORY.as_bytes()).unwrap()).unwrap();
        let summary = serde_json::json!({
            "reproduction": "perdura-chaos run --seed 9",
            "seed": 9, "nodes": nodes, "duration_s": 60,
            "episodes": [
                {"fault": "kill", "inject": "ok"},
                {"fault": "isolate-leader", "inject": "skipped: no leader known"}
            ],
            "not_converged": null,
            "check": {"valid": violations == 0, "operations": 5, "invariants": [
                {"number": 1, "title": "no acked StartWorkflow lost", "judged": 2,
                 "violation_count": violations}
            ]},
            "valid": violations == 0
        });
        RunResult::from_run("n3-s9", &summary, &history, Some(0))
    }

    #[test]
    fn an_episode_counts_the_operations_invoked_under_it_and_skipped_injects_do_not_count() {
        let result = run(3, 0);
        assert_eq!(
            result.episodes,
            vec![EpisodeCount {
                fault: "kill".into(),
                operations: 1
            }]
        );
        assert!(result.valid && result.converged);
    }

    #[test]
    fn a_rolling_restart_is_one_episode_over_all_its_restarts() {
        let line = |index: u64, kind: &str, action: &str, t: u64| {
            format!(
                r#"{{"process":1000000,"index":{index},"type":"{kind}","f":{{"name":"nemesis","action":"{action}","fault":"rolling_restart","nodes":[1]}},"time_ns":{t}}}"#
            )
        };
        let mut lines = Vec::new();
        for (i, t) in [(0u64, 10u64), (1, 100)] {
            lines.push(line(2 * i, "invoke", "inject", t));
            lines.push(line(2 * i, "ok", "inject", t + 1));
            lines.push(line(2 * i + 1, "invoke", "heal", t + 2));
            lines.push(line(2 * i + 1, "ok", "heal", t + 3));
        }
        lines.push(r#"{"process":0,"index":0,"type":"invoke","f":{"name":"start_workflow","workflow_id":"w","request_id":"r"},"time_ns":50}"#.into());
        lines.push(r#"{"process":0,"index":0,"type":"ok","f":{"name":"start_workflow","workflow_id":"w","request_id":"r"},"value":{"kind":"started","run_id":"a"},"time_ns":60}"#.into());
        let text = lines.join("\n");
        let history = History::from_records(read_history(text.as_bytes()).unwrap()).unwrap();
        let summary = serde_json::json!({
            "nodes": 3, "episodes": [{"fault": "rolling-restart", "inject": "see detail"}]
        });
        let result = RunResult::from_run("r", &summary, &history, None);
        assert_eq!(
            result.episodes,
            vec![EpisodeCount {
                fault: "rolling-restart".into(),
                operations: 1
            }],
            "one episode, and the operation between two restarts ran under it"
        );
    }

    #[test]
    fn the_tables_sum_runs_episodes_operations_and_violations() {
        let table = render(&[run(3, 0), run(5, 2)]);
        assert!(
            table.starts_with("2 runs, 2 fault episodes (1 on 3 nodes, 1 on 5), 10 operations, 2 violations, 1 runs not valid."),
            "{table}"
        );
        assert!(
            table.contains("| kill | 2 (1 / 1) | 1 | 1 | 2 | 2 |"),
            "{table}"
        );
        assert!(
            table.contains("| 1 | no acked StartWorkflow lost | 4 | 2 |"),
            "{table}"
        );
        assert!(table.contains("| INVALID |"), "{table}");
    }
}
