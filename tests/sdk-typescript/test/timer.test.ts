// Test 3 (TypeScript): a durable 2 s timer never fires early.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker, NativeConnection } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { TimerWorkflow } from '../src/workflows';
import { TestServer, withServerLog, uniqueTaskQueue, contiguous, dump, eventIds, eventSeconds, eventTypes, WORKFLOWS_PATH } from './harness';

const SLEEP_MS = 2000;
const EventType = temporal.api.enums.v1.EventType;
const server = new TestServer('timer');
before(async () => {
  await server.start();
});
after(async () => {
  await server.kill('SIGTERM');
});

test('durable timer: completes no sooner than 2 s, TimerStarted + TimerFired in history', { timeout: 180_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('timer');
    const connection = await NativeConnection.connect({ address: server.address });
    const worker = await Worker.create({ connection, namespace: 'default', taskQueue, workflowsPath: WORKFLOWS_PATH });
    const { handle, result, elapsed } = await worker.runUntil(async () => {
      const t0 = performance.now();
      const handle = await client.workflow.start(TimerWorkflow, {
        args: [SLEEP_MS], taskQueue, workflowId: `timer-ts-${Math.random().toString(16).slice(2, 10)}`,
      });
      const result = await handle.result();
      return { handle, result, elapsed: performance.now() - t0 };
    });
    await connection.close();

    assert.ok(elapsed >= SLEEP_MS, `workflow completed after ${elapsed} ms, before its ${SLEEP_MS} ms timer`);
    assert.ok(elapsed < SLEEP_MS + 15_000, `timer took ${elapsed} ms`);
    assert.ok(result >= SLEEP_MS - 1, `workflow time advanced only ${result} ms across the timer`);

    const events = (await handle.fetchHistory()).events ?? [];
    assert.ok(contiguous(events), `event ids not contiguous: ${eventIds(events)}`);
    assert.deepEqual(eventTypes(events), [
      'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
      'TIMER_STARTED', 'TIMER_FIRED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
      'WORKFLOW_EXECUTION_COMPLETED',
    ], dump(events));
    const started = events.find((e) => e.eventType === EventType.EVENT_TYPE_TIMER_STARTED)!;
    const fired = events.find((e) => e.eventType === EventType.EVENT_TYPE_TIMER_FIRED)!;
    const timeout = started.timerStartedEventAttributes!.startToFireTimeout!;
    assert.equal(Number(timeout.seconds ?? 0) * 1000 + (timeout.nanos ?? 0) / 1e6, SLEEP_MS);
    assert.equal(Number(fired.timerFiredEventAttributes!.startedEventId), Number(started.eventId));
    assert.equal(fired.timerFiredEventAttributes!.timerId, started.timerStartedEventAttributes!.timerId);
    const gap = eventSeconds(fired) - eventSeconds(started);
    assert.ok(gap >= SLEEP_MS / 1000 - 0.001, `TimerFired only ${gap}s after TimerStarted`);
  }));
