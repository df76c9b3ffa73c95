"""Test 5: the server is killed (SIGKILL) with 20 order workflows in flight, then restarted on
the same data and port; every workflow completes and no acknowledged work is redone.

What "acknowledged" means here, and why the checks below are sound
-------------------------------------------------------------------
An activity execution cannot observe when the server durably records its completion: the SDK
reports the result after the activity function has returned. So the test observes it from the
outside. While the workload runs, an observer task reads the 20 histories over and over
(GetWorkflowExecutionHistory). Every (workflow, activity) pair it saw as ActivityTaskCompleted
before the kill was acknowledged by the server to a client, so it must survive the crash. The
observer is cancelled and awaited *before* the SIGKILL, so the set ACKED only holds reads that
returned before the crash.

Every execution appends a "start" line (workflow id, activity, attempt, wall time) to the
side-effect file. The checks, after all 20 workflows have completed on the restarted server:

  1. No pair in ACKED has a line written after the kill: the server never re-dispatches an
     activity whose completion it had already acknowledged. No failures are injected and the
     start-to-close timeout (5 s) is far above the activity's 0.5 s, so each pair in ACKED ran
     exactly once, as attempt 1.
  2. Pairs not in ACKED may have run more than once (the crash may have lost their completion:
     at-least-once), but never the same attempt twice, and the final history's
     ActivityTaskStarted attempt equals the highest attempt that ran: the server's attempt
     counter is durable and agrees with what the worker really executed.
  3. Every history is 1..N contiguous, has each of the four activities completed exactly once and
     ends with WorkflowExecutionCompleted; every result is right.
  4. Activities ran in workflow order: each activity's first start comes after the previous
     activity's last start.
  5. The test is not vacuous: at the kill some pairs were acknowledged, some had started but were
     not acknowledged, and some work ran after the restart.
"""

import asyncio
import time
import uuid

from harness import (
    ORDER_ACTIVITIES,
    activity_events,
    assert_contiguous,
    event_types,
    history_dump,
    read_side_effects,
    wait_for,
)
from temporalio.api.enums.v1 import EventType
from workflows import OrderWorkflow

N_WORKFLOWS = 20
ACTIVITY_SLEEP_S = 0.5
START_TO_CLOSE_S = 5


async def completed_pairs(client, wf_id):
    events = (await client.get_workflow_handle(wf_id).fetch_history()).events
    done = set()
    sched = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
             for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done.add((wf_id, sched[e.activity_task_completed_event_attributes.scheduled_event_id]))
    return done


def test_server_killed_with_workflows_in_flight(fresh_server, worker_procs, task_queue, tmp_path):
    server = fresh_server
    side = str(tmp_path / "side-effects.jsonl")
    run = uuid.uuid4().hex[:6]
    wf_ids = [f"order-scrash-{run}-{i:02d}" for i in range(N_WORKFLOWS)]

    async def main():
        client = await server.start()
        worker = worker_procs(server.address, task_queue, side, "server-crash")
        worker.spawn()

        handles = []
        for wf_id in wf_ids:
            order = {"order_id": wf_id, "amount": 10, "item": "bolt", "qty": 2,
                     "sleep_s": ACTIVITY_SLEEP_S, "start_to_close_s": START_TO_CLOSE_S}
            handles.append(await client.start_workflow(OrderWorkflow.run, order, id=wf_id,
                                                       task_queue=task_queue))

        acked = set()

        async def observe():
            while True:
                for wf_id in wf_ids:
                    acked.update(await completed_pairs(client, wf_id))
                await asyncio.sleep(0.05)

        observer = asyncio.create_task(observe())
        total = N_WORKFLOWS * len(ORDER_ACTIVITIES)

        def ready_to_crash():
            if observer.done():
                observer.result()  # surface the observer's exception
            started = {(r["wf"], r["act"]) for r in read_side_effects(side) if r["phase"] == "start"}
            return len(acked) >= total // 4 and len(started - acked) > 0

        await wait_for(ready_to_crash, 90, f">= {total // 4} acknowledged completions and work in flight")
        observer.cancel()
        try:
            await observer
        except asyncio.CancelledError:
            pass
        acked_at_kill = set(acked)
        started_at_kill = {(r["wf"], r["act"]) for r in read_side_effects(side) if r["phase"] == "start"}
        t_kill = time.time()
        server.kill9()
        in_flight = started_at_kill - acked_at_kill
        assert acked_at_kill and in_flight, (len(acked_at_kill), len(in_flight))
        assert len(acked_at_kill) < total, "everything finished before the crash: nothing was tested"

        await asyncio.sleep(1.0)
        client = await server.start()
        print(f"server restarted after SIGKILL: {len(acked_at_kill)} pairs acknowledged, "
              f"{len(in_flight)} in flight at the kill")

        results = []
        for wf_id in wf_ids:
            h = client.get_workflow_handle(wf_id)
            try:
                results.append(await asyncio.wait_for(h.result(), timeout=120))
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"{wf_id} did not complete within 120 s after the restart; worker alive="
                    f"{worker.alive()}\nhistory:\n{history_dump((await h.fetch_history()).events)}\n"
                    f"worker log:\n{worker.log_tail()}")
        # The worker that lived through the server crash did the rest of the work.
        assert worker.alive(), f"worker died during the server crash:\n{worker.log_tail()}"

        for wf_id, result in zip(wf_ids, results):
            assert result == {"order_id": wf_id, "steps": [f"{n}:{wf_id}" for n in ORDER_ACTIVITIES]}

        lines = [r for r in read_side_effects(side) if r["phase"] == "start"]
        assert any(r["t"] > t_kill for r in lines), "no activity ran after the restart"
        by_pair = {}
        for r in lines:
            by_pair.setdefault((r["wf"], r["act"]), []).append(r)

        problems = []
        for wf_id in wf_ids:
            events = (await client.get_workflow_handle(wf_id).fetch_history()).events
            assert_contiguous(events)
            types = event_types(events)
            assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED", history_dump(events)
            completed = activity_events(events, "COMPLETED")
            started = activity_events(events, "STARTED")
            prev_last_start = None
            for act in ORDER_ACTIVITIES:
                pair = (wf_id, act)
                runs = by_pair.get(pair, [])
                attempts = [r["attempt"] for r in runs]
                if len(completed.get(act, [])) != 1 or len(started.get(act, [])) != 1:
                    problems.append(f"{pair}: completed {len(completed.get(act, []))}x, "
                                    f"started {len(started.get(act, []))}x in history")
                    continue
                h_attempt = started[act][0].activity_task_started_event_attributes.attempt
                if pair in acked_at_kill:
                    late = [r for r in runs if r["t"] >= t_kill]
                    if late:
                        problems.append(f"{pair}: completion was acknowledged before the crash but the "
                                        f"activity ran again after it: attempts {attempts}")
                    if attempts != [1] or h_attempt != 1:
                        problems.append(f"{pair}: acknowledged pair ran attempts {attempts}, "
                                        f"history attempt {h_attempt}")
                if not runs:
                    problems.append(f"{pair}: completed in history but never executed")
                    continue
                if len(set(attempts)) != len(attempts):
                    problems.append(f"{pair}: the same attempt was dispatched twice: {attempts}")
                if h_attempt != max(attempts):
                    problems.append(f"{pair}: history says attempt {h_attempt}, executions {attempts}")
                first_start = min(r["t"] for r in runs)
                if prev_last_start is not None and first_start < prev_last_start:
                    problems.append(f"{pair}: started before the previous activity's last execution")
                prev_last_start = max(r["t"] for r in runs)
        assert not problems, "\n".join(problems)

    asyncio.run(main())
