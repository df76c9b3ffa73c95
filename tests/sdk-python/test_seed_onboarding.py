"""Seed 3: onboarding. A status query returns the current step while the workflow waits for a
verification signal; querying after completion works."""

import asyncio
import uuid

from temporalio import activity
from temporalio.worker import Worker

from harness import wait_blocked
from seed_workflows import Onboarding
from shapes import ShapeCheck


def test_onboarding_status_query(shared_server, task_queue):
    async def main():
        client = await shared_server.wait_ready()
        calls = []

        @activity.defn(name="create_account")
        async def create_account(user: str) -> str:
            calls.append("create_account")
            return "ok"

        @activity.defn(name="provision_workspace")
        async def provision_workspace(user: str) -> str:
            calls.append("provision_workspace")
            return "ok"

        shapes = ShapeCheck("onboarding")
        wf_id = f"onboarding-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[Onboarding],
                          activities=[create_account, provision_workspace]):
            handle = await client.start_workflow(Onboarding.run, "ada", id=wf_id, task_queue=task_queue)
            await wait_blocked(handle, "ACTIVITY_TASK_COMPLETED")
            assert await handle.query(Onboarding.status) == "awaiting-verification"
            # Asking again gives the same answer: queries change nothing.
            assert await handle.query(Onboarding.status) == "awaiting-verification"
            assert calls == ["create_account"]
            await handle.signal(Onboarding.email_verified)
            assert await asyncio.wait_for(handle.result(), timeout=30) == "onboarded ada"
            # A closed workflow still answers (the worker replays its history).
            assert await handle.query(Onboarding.status) == "done"

        assert calls == ["create_account", "provision_workspace"]
        await shapes.add_run(client, "verified", wf_id)
        shapes.check()

    asyncio.run(main())
