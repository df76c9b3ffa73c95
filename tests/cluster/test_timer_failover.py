"""Timers fire from the current group leader; after a failover the new leader fires overdue
timers at once, and no timer fires early.

TimerWorkflows (one 6 s durable sleep each, spread over the groups) are started through node 1
with a worker on every node. Once every timer is armed (TimerStarted in each history), about a
second before the first comes due, the node leading the most groups is SIGKILLed: its groups'
timers come due while those groups have no leader (the test checks that some did). Every workflow completes; by the server's leader-stamped event times no TimerFired is
earlier than its TimerStarted + 6 s, and every TimerFired is at most a short bound after both
its due time and the moment every group had a leader again.
"""

import asyncio
import time
import uuid

from temporalio.api.enums.v1 import EventType

from workload import Clients, fetch_history

N_WORKFLOWS = 24
SLEEP_S = 6.0
# How long after "due, and its group has a leader" a timer may take to fire (the server's
# TimerFired time: no worker round trip is included).
FIRE_BOUND_S = 2.0


def test_overdue_timers_fire_at_once_after_failover(cluster, workers, task_queue, tmp_path):
    n1 = cluster.node(1)
    ids = [f"timer-{uuid.uuid4().hex[:6]}-{i:02d}" for i in range(N_WORKFLOWS)]

    async def main():
        ws = workers(list(cluster.nodes.values()), task_queue, str(tmp_path / "ledger.jsonl"))
        clients = Clients(cluster)
        c1 = await clients.get(n1)
        handles = await asyncio.gather(*(
            c1.start_workflow("TimerWorkflow", SLEEP_S, id=wf_id, task_queue=task_queue)
            for wf_id in ids))

        armed_at = {}

        async def is_armed(wf_id: str) -> bool:
            events = await fetch_history(c1, wf_id)
            for e in events:
                if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                    armed_at[wf_id] = e.event_time.ToMicroseconds() / 1e6
                    return True
            return False

        async def armed() -> bool:
            return all(await asyncio.gather(*(is_armed(wf_id) for wf_id in ids)))

        deadline = time.monotonic() + 30
        while not await armed():
            assert time.monotonic() < deadline, "timers not armed within 30 s"
            await asyncio.sleep(0.1)
        # About a second before the first timer comes due: they come due during the election.
        await asyncio.sleep(max(0.0, min(armed_at.values()) + SLEEP_S - 1.0 - time.time()))
        victim = cluster.most_leading_node()
        killed_at = time.time()
        cluster.kill9(victim)
        leaders_s = await cluster.wait_all_leaders(30)
        leaders_at = time.time()
        print(f"\nkilled {victim}; every group had a leader again after {leaders_s:.2f}s")

        survivor = next(n for n in cluster.live())
        client = await clients.get(survivor)
        late = []
        overdue = 0

        for wf_id, handle in zip(ids, handles):
            result = await asyncio.wait_for(client.get_workflow_handle(wf_id).result(), 60)
            assert result.startswith("slept "), result
            events = await fetch_history(client, wf_id)
            started = next(e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
            fired = next(e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED)
            t_started = started.event_time.ToMicroseconds() / 1e6
            t_fired = fired.event_time.ToMicroseconds() / 1e6
            due = t_started + SLEEP_S
            assert t_fired >= due - 0.001, f"{wf_id}: fired {due - t_fired:.3f}s early"
            if t_fired - due > 0.5:
                overdue += 1  # its group had no leader when it came due
            allowed = max(due, leaders_at) + FIRE_BOUND_S
            if t_fired > allowed:
                late.append(f"{wf_id}: fired {t_fired - max(due, leaders_at):.2f}s after it was "
                            f"due and led")
        assert not late, "\n".join(late)

        assert overdue > 0, "no timer was held up by the failover: kill earlier"
        print(f"{len(ids)} timers fired, none early, none later than {FIRE_BOUND_S}s after due "
              f"and led; {overdue} came due while their group had no leader")
        for w in ws:
            if w.node is not victim:
                assert w.alive(), f"worker on {w.node} died:\n{w.log_tail()}"

    asyncio.run(main())
