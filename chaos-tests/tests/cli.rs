//! `perdura-chaos check` through the real binary: a valid recorded run exits 0, a run that lost an
//! acknowledged signal exits 1 naming the invariant and the witness, unreadable input exits 2
//! naming the line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn check(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perdura-chaos"))
        .arg("check")
        .args(args)
        .args(extra)
        .output()
        .expect("running perdura-chaos")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_valid_run_exits_zero_and_every_invariant_judged_something() {
    // The fixture spans milliseconds, so liveness gets millisecond bounds.
    let bounds = [
        "--json",
        "--liveness-bound-ms",
        "5",
        "--recovery-grace-ms",
        "1",
    ];
    let files = [
        fixture("valid-history.jsonl"),
        fixture("valid-final-read.json"),
    ];
    let output = check(&[&files[0], &files[1]], &bounds);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    assert_eq!(summary["valid"], true);
    assert_eq!(summary["operations"], 11);
    let invariants = summary["invariants"].as_array().expect("invariants");
    assert_eq!(invariants.len(), 9);
    for invariant in invariants {
        assert!(
            invariant["judged"].as_u64().unwrap_or(0) > 0,
            "judged nothing: {invariant}"
        );
        assert_eq!(invariant["violation_count"], 0);
    }
}

#[test]
fn a_run_that_lost_an_acked_signal_exits_one_with_the_witness() {
    let output = check(
        &[
            &fixture("valid-history.jsonl"),
            &fixture("lost-signal-final-read.json"),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("invariant 6 (acked signals applied once, in ack order): acked signal s1 was never applied on w1"), "{text}");
    assert!(
        text.contains("line 3: p2 #0 signal(w1/current, request s1, value \"v1\")"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("INVALID"), "{text}");
}

#[test]
fn a_malformed_history_line_exits_two_naming_the_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let history = dir.path().join("history.jsonl");
    let valid = std::fs::read_to_string(fixture("valid-history.jsonl")).expect("fixture");
    let mut lines: Vec<&str> = valid.lines().collect();
    lines[4] = "{\"process\": 1, \"type\": \"ok\"}";
    std::fs::write(&history, lines.join("\n")).expect("write history");
    let output = check(&[&history, &fixture("valid-final-read.json")], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("history line 5:"), "{stderr}");
}
