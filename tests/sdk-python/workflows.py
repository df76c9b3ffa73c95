"""Workflow definitions shared by the Python end-to-end tests.

Workflows call activities by name, so this module imports no activity code and each test
registers the activity implementations it needs under those names.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

ORDER_ACTIVITIES = ["charge_payment", "decrement_inventory", "send_confirmation", "notify_warehouse"]


@workflow.defn
class OrderWorkflow:
    """Order fulfilment: four activities in sequence.

    order = {"order_id", "amount", "item", "qty",
             optional "start_to_close_s" (default 10), "initial_interval_ms" (default 200)}
    """

    def __init__(self) -> None:
        self._steps: list = []

    @workflow.query
    def progress(self) -> list:
        """The results of the activities completed so far."""
        return list(self._steps)

    @workflow.run
    async def run(self, order: dict) -> dict:
        retry = RetryPolicy(
            initial_interval=timedelta(milliseconds=order.get("initial_interval_ms", 200)),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=1),
            maximum_attempts=order.get("maximum_attempts", 10),
        )
        for name in ORDER_ACTIVITIES:
            self._steps.append(
                await workflow.execute_activity(
                    name,
                    order,
                    start_to_close_timeout=timedelta(seconds=order.get("start_to_close_s", 10)),
                    retry_policy=retry,
                )
            )
        return {"order_id": order["order_id"], "steps": list(self._steps)}


@workflow.defn
class PaymentWorkflow:
    """Charges a card once; the activity's failure decides whether it is retried.

    mode "flag": the activity raises ApplicationError(non_retryable=True).
    mode "type": the activity raises a retryable ApplicationError whose type is listed in the
                 retry policy's non_retryable_error_types.
    """

    @workflow.run
    async def run(self, req: dict) -> str:
        return await workflow.execute_activity(
            "charge_card",
            req,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                maximum_interval=timedelta(milliseconds=500),
                maximum_attempts=5,
                non_retryable_error_types=["InvalidAccount"],
            ),
        )


@workflow.defn
class TimerWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        before = workflow.now()
        await asyncio.sleep(seconds)
        after = workflow.now()
        return f"slept {(after - before).total_seconds():.3f}"


@workflow.defn
class WaitForSignalWorkflow:
    def __init__(self) -> None:
        self._done = False
        self._value = ""

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._done)
        return f"finished:{self._value}"

    @workflow.signal
    def finish(self, value: str) -> None:
        self._value = value
        self._done = True
