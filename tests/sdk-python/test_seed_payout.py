"""Seed 1: payout approval. ``wait_condition(decision is not None, timeout=72h)`` completes on an
approving signal, and rejects when the (test-shortened) wait times out."""

import asyncio
import time
import uuid

from temporalio import activity
from temporalio.worker import Worker

from harness import wait_blocked
from seed_workflows import PayoutApproval
from shapes import ShapeCheck


def test_payout_approved_by_signal(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        payouts = []

        @activity.defn(name="send_payout")
        async def send_payout(payout: dict) -> str:
            payouts.append(payout["id"])
            return f"paid {payout['amount']} to {payout['id']}"

        shapes = ShapeCheck("payout")
        wf_id = f"payout-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[PayoutApproval], activities=[send_payout]):
            handle = await client.start_workflow(
                PayoutApproval.run, {"id": wf_id, "amount": 250}, id=wf_id, task_queue=task_queue)
            # Blocked in the 72-hour wait (its timer started) before the approver decides.
            await wait_blocked(handle, "TIMER_STARTED")
            await handle.signal(PayoutApproval.decide, "approve")
            result = await asyncio.wait_for(handle.result(), timeout=30)

        assert result == f"paid 250 to {wf_id}"
        assert payouts == [wf_id]
        await shapes.add_run(client, "approved", wf_id)
        shapes.check()

    asyncio.run(main())


def test_payout_rejected_when_wait_times_out(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        payouts = []

        @activity.defn(name="send_payout")
        async def send_payout(payout: dict) -> str:
            payouts.append(payout["id"])
            return "paid"

        shapes = ShapeCheck("payout")
        wf_id = f"payout-timeout-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[PayoutApproval], activities=[send_payout]):
            t0 = time.monotonic()
            handle = await client.start_workflow(
                PayoutApproval.run, {"id": wf_id, "amount": 250, "wait_s": 2}, id=wf_id, task_queue=task_queue)
            result = await asyncio.wait_for(handle.result(), timeout=30)
            elapsed = time.monotonic() - t0

        assert result == "rejected: no decision in time"
        assert elapsed >= 2.0, f"the 2 s approval wait expired after {elapsed:.3f}s"
        assert payouts == [], "no payout without approval"
        await shapes.add_run(client, "timed_out", wf_id)
        shapes.check()

    asyncio.run(main())
