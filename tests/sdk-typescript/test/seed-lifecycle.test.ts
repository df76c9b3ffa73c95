// Seeds 9-10 (TypeScript): updates (accepted, rejected by the validator, deduplicated by id);
// cancel and terminate from the client; a second start of a running id; USE_EXISTING.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TerminatedFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { LongRunningJob, ShoppingCart, addItem, checkout } from '../src/seed-workflows';
import { TestServer, checkShapes, pendingOnPerdura, shape, uniqueId, uniqueTaskQueue, waitBlocked, withServerLog, withWorker } from './harness';

const EventType = temporal.api.enums.v1.EventType;
const server = new TestServer('seed-lifecycle');
before(async () => {
  await server.start();
});
after(async () => {
  await server.kill('SIGTERM');
});

test('updates: accepted and completed, rejected by the validator, deduplicated by update id', { timeout: 180_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('cart');
    const id = uniqueId('cart-ts');
    const handle = await withWorker(server, { taskQueue }, async () => {
      const handle = await client.workflow.start(ShoppingCart, { taskQueue, workflowId: id });
      await waitBlocked(handle);
      const first = await handle.executeUpdate(addItem, { args: ['book'], updateId: 'add-book' });
      assert.deepEqual(first, { items: ['book'], handler_runs: 1 });
      await waitBlocked(handle, { event: 'WORKFLOW_EXECUTION_UPDATE_COMPLETED' });

      const err = await handle.executeUpdate(addItem, { args: ['-1'], updateId: 'add-negative' }).then(
        (r) => assert.fail(`rejected update returned ${JSON.stringify(r)}`), (e: unknown) => e);
      assert.ok(err instanceof WorkflowUpdateFailedError, `${err}`);
      assert.ok(err.cause instanceof ApplicationFailure, `${err.cause}`);
      assert.match(err.cause.message, /invalid item '-1'/);
      await waitBlocked(handle);

      const again = await handle.executeUpdate(addItem, { args: ['book'], updateId: 'add-book' });
      assert.deepEqual(again, first, 'the same update id returns the first outcome');
      await waitBlocked(handle);
      await handle.signal(checkout);
      assert.deepEqual(await handle.result(), { items: ['book'], handler_runs: 1 });
      return handle;
    });
    const events = (await handle.fetchHistory()).events ?? [];
    assert.equal(events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED).length, 1);
    assert.equal(events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED).length, 1);
    checkShapes('updates', { one_update_accepted: shape(events) });
  }));

test('cancel from the client: Describe says CANCELLED', { timeout: 180_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('cancel');
    const id = uniqueId('job-ts-cancel');
    const handle = await withWorker(server, { taskQueue }, async () => {
      const handle = await client.workflow.start(LongRunningJob, { args: [24], taskQueue, workflowId: id });
      await waitBlocked(handle, { event: 'TIMER_STARTED' });
      await handle.cancel();
      const err = await handle.result().then((r) => assert.fail(`workflow returned ${r}`), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, `${err}`);
      return handle;
    });
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    checkShapes('lifecycle', { cancelled: shape((await handle.fetchHistory()).events ?? []) });
  }));

test('terminate from the client: Describe says TERMINATED', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('terminate');
    const id = uniqueId('job-ts-terminate');
    const handle = await withWorker(server, { taskQueue }, async () => {
      const handle = await client.workflow.start(LongRunningJob, { args: [24], taskQueue, workflowId: id });
      await waitBlocked(handle, { event: 'TIMER_STARTED' });
      await handle.terminate('operator stopped the job');
      const err = await handle.result().then((r) => assert.fail(`workflow returned ${r}`), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof TerminatedFailure, `${err}`);
      return handle;
    });
    assert.equal((await handle.describe()).status.name, 'TERMINATED');
    checkShapes('lifecycle', { terminated: shape((await handle.fetchHistory()).events ?? []) });
  }));

test('a second start of a running id fails with WorkflowExecutionAlreadyStartedError', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('dup');
    const id = uniqueId('job-ts-dup');
    await withWorker(server, { taskQueue }, async () => {
      const first = await client.workflow.start(LongRunningJob, { args: [24], taskQueue, workflowId: id });
      const err = await client.workflow.start(LongRunningJob, { args: [24], taskQueue, workflowId: id }).then(
        () => assert.fail('second start succeeded'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowExecutionAlreadyStartedError, `${err}`);
      assert.equal(err.workflowId, id);
      await first.terminate('cleanup');
    });
  }));

test('USE_EXISTING returns the running run', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('existing');
    const id = uniqueId('job-ts-existing');
    await withWorker(server, { taskQueue }, async () => {
      const first = await client.workflow.start(LongRunningJob, { args: [24], taskQueue, workflowId: id });
      await waitBlocked(first, { event: 'TIMER_STARTED' });
      const second = await client.workflow.start(LongRunningJob, {
        args: [24], taskQueue, workflowId: id, workflowIdConflictPolicy: 'USE_EXISTING',
      });
      assert.equal(second.firstExecutionRunId, first.firstExecutionRunId);
      const desc = await client.workflow.getHandle(id).describe();
      assert.equal(desc.runId, first.firstExecutionRunId);
      assert.equal(desc.status.name, 'RUNNING');
      await first.terminate('cleanup');
    });
    checkShapes('lifecycle', { use_existing_then_terminated: shape((await client.workflow.getHandle(id).fetchHistory()).events ?? []) });
  }));
