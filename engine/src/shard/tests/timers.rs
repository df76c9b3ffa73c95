use super::*;

#[test]
fn timer_fires_at_its_time_never_early() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![start_timer("sleep", 2_000)]);
    assert_eq!(h.state.next_timer_ms(), Some(T0 + 2_000));
    h.advance(1_999);
    assert_eq!(h.fire_timers(), 0);
    assert_eq!(h.history(&k).len(), 5);
    h.advance(1);
    assert_eq!(h.fire_timers(), 1);
    assert_eq!(
        h.event_types(&k)[5..],
        [EventType::TimerFired, EventType::WorkflowTaskScheduled]
    );
    let Attributes::TimerFiredEventAttributes(f) = attrs(h.event(&k, 6)) else {
        panic!()
    };
    assert_eq!((f.timer_id.as_str(), f.started_event_id), ("sleep", 5));
    assert_eq!(
        h.event(&k, 6).event_time,
        Some(crate::shard::time::timestamp(T0 + 2_000))
    );
    assert_eq!(h.state.next_timer_ms(), None);
    // A lagging leader clock is clamped: time never goes back.
    h.now_ms = T0;
    h.fire_timers();
    assert_eq!(h.state.clock_ms(), T0 + 2_000);
}

#[test]
fn timers_due_together_fire_in_order_with_one_workflow_task() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(
        &k,
        vec![
            start_timer("b", 1_000),
            start_timer("a", 1_000),
            start_timer("c", 5_000),
        ],
    );
    h.advance(10_000);
    assert_eq!(h.fire_timers(), 3);
    assert_eq!(
        h.event_types(&k)[7..],
        [
            EventType::TimerFired,
            EventType::WorkflowTaskScheduled,
            EventType::TimerFired,
            EventType::TimerFired
        ]
    );
    let fired: Vec<_> = h.history(&k)[7..]
        .iter()
        .filter_map(|e| match attrs(e) {
            Attributes::TimerFiredEventAttributes(f) => Some(f.timer_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(fired, ["b", "a", "c"], "same fire time: start order");
}

#[test]
fn timer_firing_while_a_task_is_scheduled_is_appended_directly() {
    let mut h = Harness::new();
    let k = h.start("wf");
    h.run_workflow_task(&k, vec![start_timer("t1", 1_000), start_timer("t2", 2_000)]);
    h.advance(1_000);
    h.fire_timers();
    h.advance(1_000);
    h.fire_timers();
    // WFT scheduled but not started: TimerFired is appended after it, no second task.
    assert_eq!(
        h.event_types(&k)[6..],
        [
            EventType::TimerFired,
            EventType::WorkflowTaskScheduled,
            EventType::TimerFired
        ]
    );
    let info = h.poll_workflow_task(&k);
    assert_eq!(info.started_event_id, 10);
}

#[test]
fn a_timer_backlog_is_fired_in_bounded_batches() {
    let limits = crate::shard::EngineLimits {
        max_timers_per_fire: 2,
        ..Default::default()
    };
    let mut h = Harness::with_state(ShardState::with_limits(limits));
    let k = h.start("wf");
    let timers = (0..5)
        .map(|i| start_timer(&format!("t{i}"), 1_000 + i))
        .collect();
    h.run_workflow_task(&k, timers);
    h.advance(60_000);
    assert_eq!(h.fire_timers(), 2);
    assert_eq!(
        h.state.next_timer_ms(),
        Some(T0 + 1_002),
        "the rest is still due"
    );
    assert_eq!(h.fire_timers(), 2);
    assert_eq!(h.fire_timers(), 1);
    assert_eq!(h.fire_timers(), 0);
    let fired = h
        .event_types(&k)
        .iter()
        .filter(|t| **t == EventType::TimerFired)
        .count();
    assert_eq!(fired, 5);
}
