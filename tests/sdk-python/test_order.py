"""Test 1: order fulfilment with a retried activity (Python SDK)."""

import asyncio
import time
import uuid

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from harness import (
    ORDER_ACTIVITIES,
    activity_events,
    assert_contiguous,
    event_types,
    expected_order_history,
    history_dump,
)
from workflows import OrderWorkflow


def make_activities(calls: dict, attempt_times: list):
    def record(name: str) -> int:
        calls[name] = calls.get(name, 0) + 1
        return activity.info().attempt

    @activity.defn(name="charge_payment")
    async def charge_payment(order: dict) -> str:
        attempt = record("charge_payment")
        attempt_times.append((attempt, time.monotonic()))
        if attempt < 3:
            raise ApplicationError(f"payment gateway unavailable on attempt {attempt}", type="GatewayDown")
        return f"charged {order['amount']} on attempt {attempt}"

    @activity.defn(name="decrement_inventory")
    async def decrement_inventory(order: dict) -> str:
        record("decrement_inventory")
        return f"reserved {order['qty']} x {order['item']}"

    @activity.defn(name="send_confirmation")
    async def send_confirmation(order: dict) -> str:
        record("send_confirmation")
        return f"emailed {order['order_id']}"

    @activity.defn(name="notify_warehouse")
    async def notify_warehouse(order: dict) -> str:
        record("notify_warehouse")
        return f"warehouse notified for {order['order_id']}"

    return [charge_payment, decrement_inventory, send_confirmation, notify_warehouse]


def test_order_fulfilment_with_retries(server, task_queue):
    async def main():
        client = await server.wait_ready()
        calls: dict = {}
        attempt_times: list = []
        order = {"order_id": "o-" + uuid.uuid4().hex[:8], "amount": 42, "item": "widget", "qty": 3,
                 "initial_interval_ms": 200}
        async with Worker(client, task_queue=task_queue, workflows=[OrderWorkflow],
                          activities=make_activities(calls, attempt_times)):
            handle = await client.start_workflow(
                OrderWorkflow.run, order, id=f"order-{order['order_id']}", task_queue=task_queue)
            result = await asyncio.wait_for(handle.result(), timeout=60)

        assert result == {
            "order_id": order["order_id"],
            "steps": [
                "charged 42 on attempt 3",
                "reserved 3 x widget",
                f"emailed {order['order_id']}",
                f"warehouse notified for {order['order_id']}",
            ],
        }
        # The worker really ran charge three times and each other activity once.
        assert calls == {"charge_payment": 3, "decrement_inventory": 1, "send_confirmation": 1,
                         "notify_warehouse": 1}
        # The server computed the back-off: initial 200 ms, then 400 ms.
        assert [a for a, _ in attempt_times] == [1, 2, 3]
        gap1 = attempt_times[1][1] - attempt_times[0][1]
        gap2 = attempt_times[2][1] - attempt_times[1][1]
        assert gap1 >= 0.18, f"retry 1 came after {gap1:.3f}s, before the 200 ms initial interval"
        assert gap2 >= 0.36, f"retry 2 came after {gap2:.3f}s, before the 400 ms back-off"

        events = (await handle.fetch_history()).events
        assert_contiguous(events)
        assert event_types(events) == expected_order_history(), history_dump(events)

        started = activity_events(events, "STARTED")
        completed = activity_events(events, "COMPLETED")
        for name in ORDER_ACTIVITIES:
            assert len(completed.get(name, [])) == 1, f"{name} completed {len(completed.get(name, []))}x"
            assert len(started.get(name, [])) == 1, f"{name} started {len(started.get(name, []))}x"
        charge_started = started["charge_payment"][0].activity_task_started_event_attributes
        assert charge_started.attempt == 3
        # The final attempt's Started event carries the previous attempt's failure.
        assert "attempt 2" in charge_started.last_failure.message, charge_started.last_failure
        for name in ORDER_ACTIVITIES[1:]:
            assert started[name][0].activity_task_started_event_attributes.attempt == 1
        # Completed events point back at their Started and Scheduled events.
        for name in ORDER_ACTIVITIES:
            c = completed[name][0].activity_task_completed_event_attributes
            s = started[name][0]
            assert c.started_event_id == s.event_id
            assert c.scheduled_event_id == s.activity_task_started_event_attributes.scheduled_event_id

        desc = await handle.describe()
        assert desc.status is not None and desc.status.name == "COMPLETED"

    asyncio.run(main())
