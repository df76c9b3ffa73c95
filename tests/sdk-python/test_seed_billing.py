"""Seed 2: subscription billing. Charges separated by 30-day waits; a cancel signal during a
wait wakes the workflow within a second and runs the cancellation activities."""

import asyncio
import time
import uuid

from temporalio import activity
from temporalio.worker import Worker

from harness import wait_blocked
from seed_workflows import SubscriptionBilling
from shapes import ShapeCheck

THIRTY_DAYS_S = 30 * 24 * 3600


def test_subscription_cancel_wakes_the_30_day_wait(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        calls = []  # (activity, monotonic time)

        def make(name):
            @activity.defn(name=name)
            async def act(customer: str) -> str:
                calls.append((name, time.monotonic()))
                return f"{name} {customer}"
            return act

        acts = [make(n) for n in ("charge_subscription", "refund_unused_days", "send_cancellation_email")]
        shapes = ShapeCheck("billing")
        wf_id = f"billing-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[SubscriptionBilling], activities=acts):
            # First period test-shortened to 1 s, so the loop charges twice; then 30 days.
            handle = await client.start_workflow(
                SubscriptionBilling.run, {"customer": "cus-42", "periods_s": [1, THIRTY_DAYS_S, THIRTY_DAYS_S]},
                id=wf_id, task_queue=task_queue)
            # Blocked in the second period's 30-day wait: two timers started, the first fired.
            await wait_blocked(handle, "TIMER_STARTED", count=2, timeout=30)
            t_signal = time.monotonic()
            await handle.signal(SubscriptionBilling.cancel_subscription)
            result = await asyncio.wait_for(handle.result(), timeout=30)

        assert result == {"charges": 2, "cancelled": True}
        assert [n for n, _ in calls] == [
            "charge_subscription", "charge_subscription", "refund_unused_days", "send_cancellation_email"]
        woke = calls[2][1] - t_signal
        assert woke < 1.0, f"the cancellation activity ran {woke:.3f}s after the cancel signal"
        await shapes.add_run(client, "cancelled_in_second_period", wf_id)
        shapes.check()

    asyncio.run(main())
