//! `SplitOut`: the fork is a partition of the original state, replicas fork identically, moved
//! slots are refused with `SlotMoved`, and the two halves together behave like the unsplit group
//! for the rest of any log.

use super::property::{Driver, Op, check_invariants, encoded_records, op};
use super::*;
use crate::codec::versioned;
use crate::ids::{GroupId, WorkflowKey};
use crate::shard::split::command_workflow;
use crate::shard::{EngineLimits, MutableState, Notice, PendingTask, SplitOff};
use crate::slots::{SLOT_COUNT, SlotRange, slot_of};
use proptest::prelude::*;
use std::collections::BTreeSet;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::workflowservice::v1::SignalWorkflowExecutionRequest;

const NEW_GROUP: GroupId = GroupId(9);
const REPRODUCE: &str = "reproduce with: cargo test -p perdura-engine split (the failing case is saved in engine/proptest-regressions/)";

fn split_command(now_ms: i64, slots: SlotRange) -> ShardCommand {
    ShardCommand {
        now_ms,
        kind: ShardCommandKind::SplitOut {
            slots,
            new_group: NEW_GROUP,
        },
    }
}

/// The range that starts at `workflow_id`'s slot and spans `len` slots.
fn range_from(workflow_id: &str, len: u16) -> SlotRange {
    let start = slot_of("default", workflow_id).0;
    SlotRange {
        start,
        end: start.saturating_add(len.max(1)).min(SLOT_COUNT),
    }
}

fn moves(slots: SlotRange, workflow: &WorkflowKey) -> bool {
    slots.contains(slot_of(&workflow.namespace, &workflow.workflow_id))
}

/// Task IDs are per group (each half continues its own sequence), so histories and run records
/// are compared without them.
fn without_task_ids(mut ms: MutableState) -> Vec<u8> {
    ms.last_task_id = 0;
    versioned::encode(&ms).expect("encodes")
}

fn event_bytes(events: &[HistoryEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.task_id = 0;
            crate::canonical::encode(&e)
        })
        .collect()
}

fn split_off_of(applied: &Applied) -> SplitOff {
    applied
        .changes
        .split_off
        .clone()
        .expect("a first SplitOut forks a new group")
}

/// Applies the split to `original` and checks that the halves partition it exactly.
fn check_partition(original: &ShardState, slots: SlotRange) -> (ShardState, ShardState, Applied) {
    let mut remaining = original.clone();
    let applied = remaining.apply(split_command(original.clock_ms(), slots));
    let split = split_off_of(&applied);
    let forked = split.initial_state(EngineLimits::default());
    check_invariants(&remaining);
    check_invariants(&forked);
    for ms in original.executions() {
        let here = remaining.execution(&ms.key);
        let there = forked.execution(&ms.key);
        assert_eq!(
            here.is_some() as u8 + there.is_some() as u8,
            1,
            "{} is in exactly one half; {REPRODUCE}",
            ms.key
        );
        assert_eq!(there.is_some(), moves(slots, &ms.key.workflow_key()));
        assert_eq!(here.or(there), Some(ms), "{} is unchanged", ms.key);
    }
    assert_eq!(
        remaining.executions().count() + forked.executions().count(),
        original.executions().count()
    );
    for (workflow, run) in original.current_runs() {
        let owner = if moves(slots, workflow) {
            &forked
        } else {
            &remaining
        };
        assert_eq!(owner.current_run(workflow), Some(run));
    }
    assert_eq!(
        remaining.current_runs().count() + forked.current_runs().count(),
        original.current_runs().count()
    );
    // The derived indexes of the halves are exactly the original's, split by slot.
    let mut tasks: Vec<PendingTask> = remaining.pending_tasks();
    tasks.extend(forked.pending_tasks());
    tasks.sort();
    assert_eq!(
        tasks,
        original.pending_tasks(),
        "pending tasks; {REPRODUCE}"
    );
    let mut outbox = remaining.pending_outbox();
    outbox.extend(forked.pending_outbox());
    outbox.sort();
    assert_eq!(outbox, original.pending_outbox(), "outbox; {REPRODUCE}");
    let next_timer = [remaining.next_timer_ms(), forked.next_timer_ms()]
        .into_iter()
        .flatten()
        .min();
    assert_eq!(next_timer, original.next_timer_ms(), "next timer");
    assert_eq!(forked.clock_ms(), original.clock_ms());
    assert_eq!(remaining.moved_slots(), vec![(slots, NEW_GROUP)]);
    // What the storage layer deletes from the source is exactly what moved.
    let moved: BTreeSet<ExecutionKey> = forked.executions().map(|ms| ms.key.clone()).collect();
    assert_eq!(applied.changes.executions, moved);
    assert_eq!(
        applied.notices,
        vec![Notice::SlotsMoved {
            slots,
            new_group: NEW_GROUP
        }]
    );
    (remaining, forked, applied)
}

/// Runs a random log, splits at a random point on two replicas, then replays the rest of the log
/// on the two halves (routing each command to the half that owns its workflow) and compares
/// with the unsplit group.
fn split_scenario(ops: &[Op], cut_per_mille: u16, anchor: u8, len: u16) {
    let mut driver = Driver::new();
    for op in ops {
        driver.step(op);
    }
    let log = driver.log.clone();
    let cut = log.len() * usize::from(cut_per_mille) / 1000;
    let anchors = ["wf-0", "wf-1", "wf-2", "child-0", "child-1", "child-2"];
    let slots = range_from(anchors[usize::from(anchor) % anchors.len()], len);

    let mut original = ShardState::new();
    let mut histories: BTreeMap<ExecutionKey, Vec<HistoryEvent>> = BTreeMap::new();
    for command in &log[..cut] {
        for (key, events) in original.apply(command.clone()).changes.events {
            histories.entry(key).or_default().extend(events);
        }
    }
    let (mut remaining, mut forked, applied) = check_partition(&original, slots);

    // A second replica forks byte-identically, and the forked records restore the same state.
    let mut replica = original.clone();
    let again = replica.apply(split_command(original.clock_ms(), slots));
    assert_eq!(again.reply, applied.reply);
    assert_eq!(
        again.changes, applied.changes,
        "replicas fork alike; {REPRODUCE}"
    );
    assert_eq!(encoded_records(&replica), encoded_records(&remaining));
    let restored = ShardState::restore(
        remaining.clock_ms(),
        remaining.executions().cloned().collect(),
        remaining
            .current_runs()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect(),
    )
    .with_moved_slots(remaining.moved_slots());
    assert_eq!(encoded_records(&restored), encoded_records(&remaining));
    assert_eq!(restored.moved_slots(), remaining.moved_slots());
    // The derived indexes of the source hold nothing of the moved executions.
    assert_eq!(
        restored.timer_index(),
        remaining.timer_index(),
        "timer index; {REPRODUCE}"
    );
    assert_eq!(restored.pending_tasks(), remaining.pending_tasks());
    assert_eq!(restored.pending_outbox(), remaining.pending_outbox());
    // Repeating the split changes nothing.
    let repeat = remaining.apply(split_command(original.clock_ms(), slots));
    assert_eq!(
        repeat.reply,
        Some(Ok(ShardReply::SplitOut {
            executions: 0,
            already: true
        }))
    );
    assert!(repeat.changes.is_empty());

    let mut split_histories = histories.clone();
    let mut clock = original.clock_ms();
    for (step, command) in log[cut..].iter().enumerate() {
        // Each half has its own clock; stamp the time the unsplit group would have used.
        clock = clock.max(command.now_ms);
        let stamped = ShardCommand {
            now_ms: clock,
            kind: command.kind.clone(),
        };
        let expected = original.apply(stamped.clone());
        for (key, events) in &expected.changes.events {
            histories
                .entry(key.clone())
                .or_default()
                .extend(events.clone());
        }
        let owned_by_fork = command_workflow(&command.kind).map(|w| moves(slots, &w));
        let replies = match owned_by_fork {
            None => vec![remaining.apply(stamped.clone()), forked.apply(stamped)],
            Some(false) => vec![remaining.apply(stamped)],
            Some(true) => {
                let refused = remaining.apply(stamped.clone());
                assert!(
                    matches!(refused.reply, Some(Err(EngineError::SlotMoved { group, .. })) if group == NEW_GROUP),
                    "step {step}: a moved slot is refused, got {:?}; {REPRODUCE}",
                    refused.reply
                );
                assert!(refused.changes.is_empty() && refused.notices.is_empty());
                vec![forked.apply(stamped)]
            }
        };
        for applied in &replies {
            for (key, events) in &applied.changes.events {
                split_histories
                    .entry(key.clone())
                    .or_default()
                    .extend(events.clone());
            }
        }
        let reply = match (&command.kind, replies.as_slice()) {
            (ShardCommandKind::FireTimers, [a, b]) => {
                let fired = |x: &Applied| match &x.reply {
                    Some(Ok(ShardReply::TimersFired { fired })) => *fired,
                    other => panic!("FireTimers replied {other:?}"),
                };
                Some(Ok(ShardReply::TimersFired {
                    fired: fired(a) + fired(b),
                }))
            }
            (_, [a, b]) => {
                assert_eq!(a.reply, b.reply, "step {step}: a group-wide command");
                a.reply.clone()
            }
            (_, [a]) => a.reply.clone(),
            _ => unreachable!("one or two replies"),
        };
        assert_eq!(
            reply, expected.reply,
            "step {step}: {:?}; {REPRODUCE}",
            command.kind
        );
        check_invariants(&remaining);
        check_invariants(&forked);
    }
    // In the end every run, every current-run pointer and every history is where it belongs
    // and equal to the unsplit group's.
    for ms in original.executions() {
        let owner = if moves(slots, &ms.key.workflow_key()) {
            &forked
        } else {
            &remaining
        };
        let other = if std::ptr::eq(owner, &forked) {
            &remaining
        } else {
            &forked
        };
        let found = owner
            .execution(&ms.key)
            .unwrap_or_else(|| panic!("{} lost; {REPRODUCE}", ms.key));
        assert!(other.execution(&ms.key).is_none(), "{} duplicated", ms.key);
        assert_eq!(
            without_task_ids(found.clone()),
            without_task_ids(ms.clone()),
            "{}; {REPRODUCE}",
            ms.key
        );
    }
    assert_eq!(
        remaining.executions().count() + forked.executions().count(),
        original.executions().count()
    );
    assert_eq!(split_histories.len(), histories.len());
    for (key, history) in &histories {
        assert_eq!(
            event_bytes(&split_histories[key]),
            event_bytes(history),
            "history of {key}; {REPRODUCE}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn split_halves_partition_the_group_and_behave_like_it(
        ops in proptest::collection::vec(op(), 1..80),
        cut in 0u16..=1000,
        anchor in any::<u8>(),
        len in 1u16..3000,
    ) {
        split_scenario(&ops, cut, anchor, len);
    }
}

#[test]
fn commands_for_moved_slots_are_refused_and_change_nothing() {
    let mut h = Harness::new();
    let moved = h.start("mover");
    let stays_id = (0..)
        .map(|i| format!("stay-{i}"))
        .find(|id| slot_of("default", id) != slot_of("default", "mover"))
        .expect("some ID hashes elsewhere");
    let stays = h.start(&stays_id);
    let token = h.poll_workflow_task(&moved).token;
    let slot = slot_of("default", "mover");
    let slots = SlotRange {
        start: slot.0,
        end: slot.0 + 1,
    };
    let applied = h.apply(ShardCommandKind::SplitOut {
        slots,
        new_group: NEW_GROUP,
    });
    assert_eq!(
        applied.reply,
        Some(Ok(ShardReply::SplitOut {
            executions: 1,
            already: false
        }))
    );
    let split = split_off_of(&applied);
    assert_eq!(split.executions.len(), 1);
    assert_eq!(split.executions[0].key, moved);
    assert!(h.state.execution(&moved).is_none());
    assert!(h.state.execution(&stays).is_some());
    let refused = |applied: Applied| {
        assert_eq!(
            applied.reply,
            Some(Err(EngineError::SlotMoved {
                slot: slot.0,
                group: NEW_GROUP
            }))
        );
        assert!(applied.changes.is_empty() && applied.notices.is_empty());
    };
    // A signal is refused, not answered "not found"; so are a start, a task completion with a
    // token issued before the split, and a start under the same ID.
    refused(h.apply(ShardCommandKind::SignalWorkflow {
        request: SignalWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "mover".into(),
                run_id: String::new(),
            }),
            signal_name: "s".into(),
            ..Default::default()
        },
    }));
    refused(h.apply(ShardCommandKind::RespondWorkflowTaskCompleted {
        token,
        request: Default::default(),
    }));
    refused(h.start_with(start_request("mover", "another-request")));
    // Commands for slots that stayed work as before.
    let task = h.poll_workflow_task(&stays);
    assert_eq!(task.token.execution, stays);
    // An overlapping split to another group is refused; the same split again is a no-op.
    let overlapping = h.apply(ShardCommandKind::SplitOut {
        slots: SlotRange {
            start: slot.0.saturating_sub(1),
            end: slot.0 + 1,
        },
        new_group: GroupId(10),
    });
    assert!(matches!(
        overlapping.reply,
        Some(Err(EngineError::FailedPrecondition(_)))
    ));
    let again = h.apply(ShardCommandKind::SplitOut {
        slots,
        new_group: NEW_GROUP,
    });
    assert!(again.changes.is_empty());
    // The forked state carries on where the source stopped: the pre-split token works there.
    let fork = Harness::with_state(split.initial_state(EngineLimits::default()));
    let started = fork
        .state
        .execution(&moved)
        .and_then(|ms| ms.started_workflow_task())
        .map(|w| w.started_event_id);
    assert_eq!(started, Some(3));
}

/// The shard-wide task-ID counter is state of its own: after the execution holding the highest
/// task ID moved away, a source group rebuilt from its remaining records alone would hand out
/// task IDs again that the live replicas already used, and the replicas' records diverge (found
/// by the chaos campaign: n3-s303, n3-s305 — a restarted replica's `MutableState`s differed in
/// their task IDs). Restored with its persisted counter, it continues exactly like the live one.
#[test]
fn a_source_restored_after_a_split_continues_task_ids_where_the_live_one_does() {
    let mut h = Harness::new();
    let stays_id = (0..)
        .map(|i| format!("stay-{i}"))
        .find(|id| slot_of("default", id) != slot_of("default", "mover"))
        .expect("some ID hashes elsewhere");
    h.start(&stays_id);
    // Started last, the mover holds the shard's highest task ID.
    h.start("mover");
    let slot = slot_of("default", "mover");
    let applied = h.apply(ShardCommandKind::SplitOut {
        slots: SlotRange {
            start: slot.0,
            end: slot.0 + 1,
        },
        new_group: NEW_GROUP,
    });
    assert!(matches!(
        applied.reply,
        Some(Ok(ShardReply::SplitOut { executions: 1, .. }))
    ));
    let live = h.state.clone();
    let rebuild = || {
        ShardState::restore(
            live.clock_ms(),
            live.executions().cloned().collect(),
            live.current_runs()
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect(),
        )
        .with_moved_slots(live.moved_slots())
    };
    assert!(
        rebuild().last_task_id() < live.last_task_id(),
        "the remaining executions no longer hold the highest task ID: this test proves nothing"
    );
    let restored = rebuild().with_last_task_id(Some(live.last_task_id()));
    assert_eq!(restored.last_task_id(), live.last_task_id());

    let signal = ShardCommand {
        now_ms: h.now_ms,
        kind: ShardCommandKind::SignalWorkflow {
            request: SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: stays_id.clone(),
                    run_id: String::new(),
                }),
                signal_name: "s".into(),
                ..Default::default()
            },
        },
    };
    let mut live_replica = live.clone();
    let mut restarted_replica = restored;
    assert_eq!(
        live_replica.apply(signal.clone()).changes,
        restarted_replica.apply(signal).changes,
        "a restarted replica writes other records than a live one"
    );
    assert_eq!(
        encoded_records(&live_replica),
        encoded_records(&restarted_replica)
    );
}
