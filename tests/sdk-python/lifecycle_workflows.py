"""Workflows of the run-lifecycle tests: cancellation, continue-as-new, retries, cron,
signal-with-start, search attributes and memo."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

STAGE = SearchAttributeKey.for_keyword("CustomKeywordField")


@workflow.defn
class SleepUntilCancelledWorkflow:
    """Sleeps for an hour; on cancellation it records why and ends as cancelled."""

    @workflow.run
    async def run(self) -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise
        return "woke up"


@workflow.defn
class CountingLoopWorkflow:
    """A monitoring loop: each run does one unit of work and continues as new until `limit`."""

    @workflow.run
    async def run(self, count: int, limit: int) -> str:
        await asyncio.sleep(0.05)
        if count < limit:
            workflow.continue_as_new(args=[count + 1, limit])
        info = workflow.info()
        return f"count={count} run={info.run_id} first={info.first_execution_run_id}"


@workflow.defn
class FlakyWorkflow:
    """Fails until its retry attempt reaches `succeed_on`."""

    @workflow.run
    async def run(self, succeed_on: int) -> str:
        attempt = workflow.info().attempt
        if attempt < succeed_on:
            raise ApplicationError(f"attempt {attempt} fails", type="Flaky")
        return f"succeeded on attempt {attempt}"


@workflow.defn
class SignalCollectorWorkflow:
    """Collects `wanted` signals, then returns them in order."""

    def __init__(self) -> None:
        self._items: list[str] = []

    @workflow.run
    async def run(self, wanted: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self._items) >= wanted)
        return self._items

    @workflow.signal
    def add(self, item: str) -> None:
        self._items.append(item)


@workflow.defn
class PropertiesWorkflow:
    """Upserts a search attribute and a memo entry, then waits for a signal to finish."""

    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes([STAGE.value_set("stage-2")])
        workflow.upsert_memo({"note": "updated"})
        await workflow.wait_condition(lambda: self._done)
        return "done"

    @workflow.signal
    def finish(self) -> None:
        self._done = True


@workflow.defn
class CronWorkflow:
    @workflow.run
    async def run(self) -> str:
        last = workflow.get_last_completion_result(type_hint=str)
        return f"after:{last}"


__all__ = [
    "SleepUntilCancelledWorkflow",
    "CountingLoopWorkflow",
    "FlakyWorkflow",
    "SignalCollectorWorkflow",
    "PropertiesWorkflow",
    "CronWorkflow",
    "timedelta",
]
