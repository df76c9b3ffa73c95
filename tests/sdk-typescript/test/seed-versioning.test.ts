// Seed 8 (TypeScript): a workflow started on old code blocks on a signal; worker A stops, worker B
// runs new code with patched('add-loyalty-points'). The old workflow finishes by the old path,
// a new workflow takes the new path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, checkShapes, shape, uniqueId, uniqueTaskQueue, waitBlocked, withServerLog, withWorker } from './harness';

const V1 = require.resolve('../src/loyalty/v1');
const V2 = require.resolve('../src/loyalty/v2');
const server = new TestServer('seed-versioning');
before(async () => {
  await server.start();
});
after(async () => {
  await server.kill('SIGTERM');
});

test('versioning: old workflow keeps the old path, new one takes patched()', { timeout: 180_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('loyalty');
    const calls: [string, string][] = [];
    const activities = {
      async ship_order(order: string) {
        calls.push(['ship_order', order]);
        return `shipped ${order}`;
      },
      async add_loyalty_points(order: string) {
        calls.push(['add_loyalty_points', order]);
        return 10;
      },
    };
    const oldId = uniqueId('loyalty-ts-old');
    const newId = uniqueId('loyalty-ts-new');
    const old = await withWorker(server, { taskQueue, activities, workflowsPath: V1 }, async () => {
      const old = await client.workflow.start('LoyaltyOrder', { args: ['order-old'], taskQueue, workflowId: oldId });
      await waitBlocked(old);
      return old;
    });
    // Worker A is gone; worker B runs the new code.
    await withWorker(server, { taskQueue, activities, workflowsPath: V2 }, async () => {
      await old.signal('approve');
      assert.equal(await old.result(), 'shipped order-old');
      const fresh = await client.workflow.start('LoyaltyOrder', { args: ['order-new'], taskQueue, workflowId: newId });
      await waitBlocked(fresh);
      await fresh.signal('approve');
      assert.equal(await fresh.result(), 'shipped order-new +10 points');
    });
    assert.deepEqual(calls, [['ship_order', 'order-old'], ['ship_order', 'order-new'], ['add_loyalty_points', 'order-new']]);
    const history = async (id: string) => (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    checkShapes('versioning', {
      started_on_old_code: shape(await history(oldId)),
      started_on_new_code: shape(await history(newId)),
    });
  }));
