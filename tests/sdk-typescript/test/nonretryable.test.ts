// Test 2 (TypeScript): a non-retryable activity failure fails the workflow after one attempt.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker, NativeConnection } from '@temporalio/worker';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure as AppFailure, RetryState } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { PaymentWorkflow } from '../src/workflows';
import {
  TestServer, withServerLog, uniqueTaskQueue, activityEvents, contiguous, dump, eventIds, eventTypes, WORKFLOWS_PATH,
} from './harness';

const server = new TestServer('nonretryable');
before(async () => {
  await server.start();
});
after(async () => {
  await server.kill('SIGTERM');
});

for (const mode of ['flag', 'type'] as const) {
  test(`non-retryable failure (${mode}) fails the workflow after exactly one attempt`, { timeout: 180_000 }, () =>
    withServerLog(server, async () => {
      const client = await server.waitReady(30_000);
      const taskQueue = uniqueTaskQueue(`nonretry-${mode}`);
      const invocations: number[] = [];
      const activities = {
        async charge_card(req: { mode: 'flag' | 'type' }): Promise<string> {
          invocations.push(Context.current().info.attempt);
          if (req.mode === 'flag') {
            throw ApplicationFailure.nonRetryable('card declined', 'CardDeclined', { code: 51 });
          }
          // Retryable by itself; the workflow's retry policy lists InvalidAccount as non-retryable.
          throw ApplicationFailure.retryable('account does not exist', 'InvalidAccount');
        },
      };
      const connection = await NativeConnection.connect({ address: server.address });
      const worker = await Worker.create({
        connection, namespace: 'default', taskQueue, workflowsPath: WORKFLOWS_PATH, activities,
      });
      const handle = await client.workflow.start(PaymentWorkflow, {
        args: [{ mode }], taskQueue, workflowId: `pay-ts-${mode}-${Math.random().toString(16).slice(2, 10)}`,
      });
      const err = await worker.runUntil(async () => {
        const e = await handle.result().then(
          (r) => assert.fail(`workflow succeeded with ${r}`),
          (e: unknown) => e,
        );
        // Give a wrongly scheduled retry (back-off 100 ms) the chance to show up.
        await new Promise((r) => setTimeout(r, 1000));
        return e;
      });
      await connection.close();

      assert.deepEqual(invocations, [1], `activity ran ${invocations.length} times`);
      assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${err}`);
      const cause = err.cause;
      assert.ok(cause instanceof ActivityFailure, `cause is ${cause}`);
      assert.equal(cause.activityType, 'charge_card');
      assert.equal(cause.retryState, RetryState.NON_RETRYABLE_FAILURE);
      const app = cause.cause;
      assert.ok(app instanceof AppFailure, `activity failure cause is ${app}`);
      if (mode === 'flag') {
        assert.equal(app.type, 'CardDeclined');
        assert.equal(app.message, 'card declined');
        assert.equal(app.nonRetryable, true);
        assert.deepEqual(app.details, [{ code: 51 }]);
      } else {
        assert.equal(app.type, 'InvalidAccount');
        assert.equal(app.message, 'account does not exist');
      }

      const events = (await handle.fetchHistory()).events ?? [];
      assert.ok(contiguous(events), `event ids not contiguous: ${eventIds(events)}`);
      assert.deepEqual(eventTypes(events), [
        'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
        'ACTIVITY_TASK_SCHEDULED', 'ACTIVITY_TASK_STARTED', 'ACTIVITY_TASK_FAILED', 'WORKFLOW_TASK_SCHEDULED',
        'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED', 'WORKFLOW_EXECUTION_FAILED',
      ], dump(events));
      const started = activityEvents(events, 'STARTED').charge_card;
      assert.equal(started.length, 1);
      assert.equal(started[0].activityTaskStartedEventAttributes!.attempt, 1);
      const failed = activityEvents(events, 'FAILED').charge_card;
      assert.equal(failed.length, 1);
      const fattrs = failed[0].activityTaskFailedEventAttributes!;
      assert.equal(fattrs.retryState, temporal.api.enums.v1.RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE);
      assert.equal(fattrs.failure?.applicationFailureInfo?.type, app.type);
      const desc = await handle.describe();
      assert.equal(desc.status.name, 'FAILED');
    }));
}
