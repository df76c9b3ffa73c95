// Test 1 (TypeScript): order fulfilment with a retried activity.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker, NativeConnection } from '@temporalio/worker';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { OrderWorkflow } from '../src/workflows';
import type { Order } from '../src/types';
import {
  TestServer, withServerLog, uniqueTaskQueue, activityEvents, contiguous, dump, eventIds, eventTypes,
  expectedOrderHistory, ORDER_ACTIVITIES, WORKFLOWS_PATH,
} from './harness';

const server = new TestServer('order');
before(async () => {
  await server.start();
});
after(async () => {
  await server.kill('SIGTERM');
});

test('order fulfilment: charge retried twice, four activities completed once each', { timeout: 180_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('order');
    const calls: Record<string, number> = {};
    const attemptTimes: Array<[number, number]> = [];
    const record = (name: string): number => {
      calls[name] = (calls[name] ?? 0) + 1;
      return Context.current().info.attempt;
    };
    const activities = {
      async charge_payment(order: Order): Promise<string> {
        const attempt = record('charge_payment');
        attemptTimes.push([attempt, performance.now()]);
        if (attempt < 3) {
          throw ApplicationFailure.retryable(`payment gateway unavailable on attempt ${attempt}`, 'GatewayDown');
        }
        return `charged ${order.amount} on attempt ${attempt}`;
      },
      async decrement_inventory(order: Order): Promise<string> {
        record('decrement_inventory');
        return `reserved ${order.qty} x ${order.item}`;
      },
      async send_confirmation(order: Order): Promise<string> {
        record('send_confirmation');
        return `emailed ${order.order_id}`;
      },
      async notify_warehouse(order: Order): Promise<string> {
        record('notify_warehouse');
        return `warehouse notified for ${order.order_id}`;
      },
    };
    const connection = await NativeConnection.connect({ address: server.address });
    const worker = await Worker.create({
      connection, namespace: 'default', taskQueue, workflowsPath: WORKFLOWS_PATH, activities,
    });
    const order: Order = { order_id: `o-${Math.random().toString(16).slice(2, 10)}`, amount: 42, item: 'widget', qty: 3 };
    const handle = await client.workflow.start(OrderWorkflow, {
      args: [order], taskQueue, workflowId: `order-ts-${order.order_id}`,
    });
    const result = await worker.runUntil(handle.result());
    await connection.close();

    assert.deepEqual(result, {
      order_id: order.order_id,
      steps: ['charged 42 on attempt 3', 'reserved 3 x widget', `emailed ${order.order_id}`,
        `warehouse notified for ${order.order_id}`],
    });
    assert.deepEqual(calls, { charge_payment: 3, decrement_inventory: 1, send_confirmation: 1, notify_warehouse: 1 });
    assert.deepEqual(attemptTimes.map(([a]) => a), [1, 2, 3]);
    const gap1 = (attemptTimes[1][1] - attemptTimes[0][1]) / 1000;
    const gap2 = (attemptTimes[2][1] - attemptTimes[1][1]) / 1000;
    assert.ok(gap1 >= 0.18, `retry 1 came ${gap1}s after attempt 1, before the 200 ms initial interval`);
    assert.ok(gap2 >= 0.36, `retry 2 came ${gap2}s after attempt 2, before the 400 ms back-off`);

    const events = (await handle.fetchHistory()).events ?? [];
    assert.ok(contiguous(events), `event ids not contiguous: ${eventIds(events)}`);
    assert.deepEqual(eventTypes(events), expectedOrderHistory(), dump(events));
    const started = activityEvents(events, 'STARTED');
    const completed = activityEvents(events, 'COMPLETED');
    for (const name of ORDER_ACTIVITIES) {
      assert.equal(completed[name]?.length, 1, `${name} completed ${completed[name]?.length ?? 0}x`);
      assert.equal(started[name]?.length, 1, `${name} started ${started[name]?.length ?? 0}x`);
      const c = completed[name][0].activityTaskCompletedEventAttributes!;
      assert.equal(Number(c.startedEventId), Number(started[name][0].eventId));
    }
    const chargeStarted = started.charge_payment[0].activityTaskStartedEventAttributes!;
    assert.equal(chargeStarted.attempt, 3);
    assert.match(chargeStarted.lastFailure?.message ?? '', /attempt 2/);
    for (const name of ORDER_ACTIVITIES.slice(1)) {
      assert.equal(started[name][0].activityTaskStartedEventAttributes!.attempt, 1);
    }
    const desc = await handle.describe();
    assert.equal(desc.status.name, 'COMPLETED');
  }));
