"""The seed documents' workflows, written the way the seeds write them (Python SDK).

Activities are called by name; each test registers implementations that record their side
effects. Long waits (72 hours, 30 days) are parameters so tests can shorten the ones they let
expire; the ones a signal interrupts stay long.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import List, Optional

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

ACT = dict(start_to_close_timeout=timedelta(seconds=10))
NO_RETRY = RetryPolicy(maximum_attempts=1)


# ------------------------------------------------------------------ 1. payout approval


@workflow.defn
class PayoutApproval:
    """Waits up to ``wait_s`` (72 hours in the seeds) for a human decision."""

    def __init__(self) -> None:
        self.decision: Optional[str] = None

    @workflow.signal
    def decide(self, decision: str) -> None:
        self.decision = decision

    @workflow.run
    async def run(self, payout: dict) -> str:
        try:
            await workflow.wait_condition(lambda: self.decision is not None,
                                          timeout=timedelta(seconds=payout.get("wait_s", 72 * 3600)))
        except asyncio.TimeoutError:
            return "rejected: no decision in time"
        if self.decision != "approve":
            return f"rejected: {self.decision}"
        return await workflow.execute_activity("send_payout", payout, **ACT)


# ------------------------------------------------------------------ 2. subscription billing


@workflow.defn
class SubscriptionBilling:
    """Charges once per period until cancelled; a cancel signal ends the wait at once.

    ``periods_s``: the billing period of each cycle (30 days in the seeds; a test may shorten
    the first ones so that the loop really charges more than once)."""

    def __init__(self) -> None:
        self.cancelled = False

    @workflow.signal
    def cancel_subscription(self) -> None:
        self.cancelled = True

    @workflow.run
    async def run(self, sub: dict) -> dict:
        charges = 0
        for period_s in sub["periods_s"]:
            await workflow.execute_activity("charge_subscription", sub["customer"], **ACT)
            charges += 1
            try:
                await workflow.wait_condition(lambda: self.cancelled, timeout=timedelta(seconds=period_s))
            except asyncio.TimeoutError:
                continue
            break
        if self.cancelled:
            await workflow.execute_activity("refund_unused_days", sub["customer"], **ACT)
            await workflow.execute_activity("send_cancellation_email", sub["customer"], **ACT)
        return {"charges": charges, "cancelled": self.cancelled}


# ------------------------------------------------------------------ 3. onboarding


@workflow.defn
class Onboarding:
    def __init__(self) -> None:
        self.step = "starting"
        self.verified = False

    @workflow.query
    def status(self) -> str:
        return self.step

    @workflow.signal
    def email_verified(self) -> None:
        self.verified = True

    @workflow.run
    async def run(self, user: str) -> str:
        self.step = "creating-account"
        await workflow.execute_activity("create_account", user, **ACT)
        self.step = "awaiting-verification"
        await workflow.wait_condition(lambda: self.verified)
        self.step = "provisioning"
        await workflow.execute_activity("provision_workspace", user, **ACT)
        self.step = "done"
        return f"onboarded {user}"


# ------------------------------------------------------------------ 4. saga transfer


@workflow.defn
class SagaTransfer:
    """withdraw -> deposit -> notify; on a failure, compensate the completed steps in reverse."""

    @workflow.run
    async def run(self, transfer: dict) -> str:
        compensations: List[str] = []
        try:
            await workflow.execute_activity("withdraw", transfer, **ACT, retry_policy=NO_RETRY)
            compensations.append("undo_withdraw")
            await workflow.execute_activity("deposit", transfer, **ACT, retry_policy=NO_RETRY)
            compensations.append("undo_deposit")
            await workflow.execute_activity("notify_parties", transfer, **ACT, retry_policy=NO_RETRY)
        except ActivityError as err:
            for name in reversed(compensations):
                await workflow.execute_activity(name, transfer, **ACT)
            raise ApplicationError(f"transfer rolled back: {err.cause}", type="TransferRolledBack",
                                   non_retryable=True) from err
        return "transferred"


# ------------------------------------------------------------------ 5. batch of children


@workflow.defn
class BatchItem:
    @workflow.run
    async def run(self, item: str) -> str:
        return await workflow.execute_activity("process_item", item, **ACT, retry_policy=NO_RETRY)


@workflow.defn
class BatchParent:
    """Starts one child per item, in parallel, with explicit ids; reports successes and failures."""

    @workflow.run
    async def run(self, batch: dict) -> dict:
        ids = batch["child_ids"]
        results = await asyncio.gather(
            *(workflow.execute_child_workflow(BatchItem.run, child_id, id=child_id) for child_id in ids),
            return_exceptions=True,
        )
        failed = [i for i, r in zip(ids, results) if isinstance(r, ChildWorkflowError)]
        others = [r for r in results if isinstance(r, BaseException) and not isinstance(r, ChildWorkflowError)]
        if others:
            raise others[0]
        return {"succeeded": len(ids) - len(failed), "failed": len(failed), "failed_ids": failed}


# ------------------------------------------------------------------ 6. monitoring loop


@workflow.defn
class MonitoringLoop:
    """Checks a service, sleeps, and continues as new with its state until ``max_runs`` runs."""

    @workflow.run
    async def run(self, state: dict) -> dict:
        status = await workflow.execute_activity("check_service", state["service"], **ACT)
        checks = state.get("checks", []) + [status]
        await asyncio.sleep(state.get("interval_s", 0.1))
        if len(checks) < state["max_runs"]:
            workflow.continue_as_new({**state, "checks": checks})
        return {"service": state["service"], "checks": checks, "run": len(checks)}


# ------------------------------------------------------------------ 7. heartbeating activity


@workflow.defn
class LongExport:
    @workflow.run
    async def run(self, job: dict) -> dict:
        return await workflow.execute_activity(
            "export_rows", job,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=job["heartbeat_timeout_s"]),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3),
        )


# ------------------------------------------------------------------ 8. versioning with patched()


@workflow.defn(name="LoyaltyOrder")
class LoyaltyOrderV1:
    """The old code: no loyalty points."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.run
    async def run(self, order: str) -> str:
        await workflow.wait_condition(lambda: self.approved)
        return await workflow.execute_activity("ship_order", order, **ACT)


@workflow.defn(name="LoyaltyOrder")
class LoyaltyOrderV2:
    """The new code: orders started on it earn loyalty points; running ones keep the old path."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.run
    async def run(self, order: str) -> str:
        earns_points = workflow.patched("add-loyalty-points")
        await workflow.wait_condition(lambda: self.approved)
        shipped = await workflow.execute_activity("ship_order", order, **ACT)
        if earns_points:
            points = await workflow.execute_activity("add_loyalty_points", order, **ACT)
            return f"{shipped} +{points} points"
        return shipped


# ------------------------------------------------------------------ 9. updates


@workflow.defn
class ShoppingCart:
    def __init__(self) -> None:
        self.items: List[str] = []
        self.handler_runs = 0
        self.checked_out = False

    @workflow.update
    def add_item(self, item: str) -> dict:
        self.handler_runs += 1
        self.items.append(item)
        return {"items": list(self.items), "handler_runs": self.handler_runs}

    @add_item.validator
    def validate_add_item(self, item: str) -> None:
        if not item or item.startswith("-"):
            raise ValueError(f"invalid item {item!r}")

    @workflow.signal
    def checkout(self) -> None:
        self.checked_out = True

    @workflow.run
    async def run(self) -> dict:
        await workflow.wait_condition(lambda: self.checked_out)
        return {"items": self.items, "handler_runs": self.handler_runs}


# ------------------------------------------------------------------ 10. cancel / terminate


@workflow.defn
class LongRunningJob:
    @workflow.run
    async def run(self, hours: float) -> str:
        await asyncio.sleep(hours * 3600)
        return "finished"
