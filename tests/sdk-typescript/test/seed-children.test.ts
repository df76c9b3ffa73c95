// Seeds 5-7 (TypeScript): batch of child workflows, monitoring loop with continue-as-new,
// heartbeating activity resumed from its last heartbeat details.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Context, ApplicationFailure } from '@temporalio/activity';
import { temporal } from '@temporalio/proto';
import { BatchParent, LongExport, MonitoringLoop } from '../src/seed-workflows';
import {
  TestServer, checkShapes, isPerdura, pendingOnPerdura, shape, uniqueId, uniqueTaskQueue, waitBlocked, waitUntil,
  withServerLog, withWorker,
} from './harness';

const EventType = temporal.api.enums.v1.EventType;
const server = new TestServer('seed-children');
before(async () => {
  await server.start();
});
after(async () => {
  await server.kill('SIGTERM');
});

// Perdura's placement (engine/src/slots.rs): FNV-1a 64 over namespace, 0x00, workflow id; slot =
// hash mod 4096; dev mode splits the slots over 4 groups in equal contiguous ranges.
function slotOf(namespace: string, workflowId: string): number {
  let h = 0xcbf29ce484222325n;
  for (const b of [...Buffer.from(namespace), 0, ...Buffer.from(workflowId)]) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(h % 4096n);
}
const devGroupOf = (ns: string, id: string) => Math.floor(slotOf(ns, id) / 1024) + 1;

test('slot hash matches Perdura (pinned vector of engine/src/slots.rs)', () => {
  assert.equal(slotOf('', ''), Number(0xaf63bd4c8601b7dfn % 4096n));
});

const CHILD_IDS = [1, 2, 3, 4, 5].map((i) => `payroll-ts-2026-11-item-${i}`);
const FAILING = CHILD_IDS[2];

test('batch: 5 children in parallel with explicit ids, 4 succeed / 1 fails', () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    if (isPerdura()) {
      const groups = new Set(CHILD_IDS.map((id) => devGroupOf('default', id)));
      assert.ok(groups.size >= 2, `children all in shard group ${[...groups]}`);
    }
    const taskQueue = uniqueTaskQueue('batch');
    const entered: string[] = [];
    const processed: string[] = [];
    const gates = new Map<string, () => void>();
    const opened = new Map<string, Promise<void>>(CHILD_IDS.map((id) => [id, new Promise<void>((r) => gates.set(id, r))]));
    const activities = {
      async process_item(item: string) {
        entered.push(item);
        await opened.get(item);
        processed.push(item);
        if (item === FAILING) throw ApplicationFailure.nonRetryable(`${item}: malformed bank details`, 'BadInput');
        return `${item}: paid`;
      },
    };
    // Each child's activity waits for a gate the test opens one child at a time, after the
    // parent recorded the previous outcome, so the history shapes do not depend on timing.
    const parentId = 'payroll-ts-2026-11';
    const handle = await withWorker(server, { taskQueue, activities }, async () => {
      const handle = await client.workflow.start(BatchParent, { args: [{ child_ids: CHILD_IDS }], taskQueue, workflowId: parentId });
      await waitUntil(() => entered.length === 5, 30_000, 'all five children to reach their activity');
      await waitBlocked(handle, { event: 'CHILD_WORKFLOW_EXECUTION_STARTED', count: 5 });
      for (const [n, child] of CHILD_IDS.entries()) {
        gates.get(child)!();
        await waitBlocked(handle, {
          also: (t) => t.filter((x) => x === 'CHILD_WORKFLOW_EXECUTION_COMPLETED' || x === 'CHILD_WORKFLOW_EXECUTION_FAILED').length === n + 1,
        });
      }
      assert.deepEqual(await handle.result(), { succeeded: 4, failed: 1, failed_ids: [FAILING] });
      return handle;
    });
    assert.deepEqual([...processed].sort(), [...CHILD_IDS].sort());
    for (const child of CHILD_IDS) {
      const desc = await client.workflow.getHandle(child).describe();
      assert.equal(desc.status.name, child === FAILING ? 'FAILED' : 'COMPLETED', child);
      assert.equal(desc.parentExecution?.workflowId, parentId);
    }
    const history = async (id: string) => (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    checkShapes('batch', {
      'parent (workflow-task events omitted)': shape((await handle.fetchHistory()).events ?? [], true),
      'child (succeeded)': shape(await history(CHILD_IDS[0])),
      'child (failed)': shape(await history(FAILING)),
    });
  }));

test('monitoring loop: continues as new three times, result() follows the chain', { timeout: 180_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('monitor');
    const checks: string[] = [];
    const activities = {
      async check_service() {
        checks.push(Context.current().info.workflowExecution?.runId ?? '');
        return `ok#${checks.length}`;
      },
    };
    const id = uniqueId('monitor-ts');
    const handle = await withWorker(server, { taskQueue, activities }, async () => {
      const handle = await client.workflow.start(MonitoringLoop, {
        args: [{ service: 'billing-api', max_runs: 4, interval: '100ms' }], taskQueue, workflowId: id,
      });
      assert.deepEqual(await handle.result(), { service: 'billing-api', checks: ['ok#1', 'ok#2', 'ok#3', 'ok#4'], run: 4 });
      return handle;
    });
    const runs = [handle.firstExecutionRunId];
    const shapes: Record<string, string[]> = {};
    for (;;) {
      const events = (await client.workflow.getHandle(id, runs[runs.length - 1]).fetchHistory()).events ?? [];
      shapes[`run ${runs.length} of 4`] = shape(events);
      const last = events[events.length - 1];
      if (last.eventType !== EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW) {
        assert.equal(last.eventType, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED);
        break;
      }
      runs.push(last.workflowExecutionContinuedAsNewEventAttributes!.newExecutionRunId!);
      assert.ok(runs.length <= 4, `chain longer than 4 runs: ${runs}`);
    }
    assert.equal(new Set(runs).size, 4, `${runs}`);
    assert.deepEqual(checks, runs, 'each run checked the service once, in chain order');
    const desc = await client.workflow.getHandle(id).describe();
    assert.equal(desc.runId, runs[3]);
    assert.equal(desc.status.name, 'COMPLETED');
    checkShapes('monitoring', shapes);
  }));

test('heartbeat: attempt 1 stalls past its heartbeat timeout, attempt 2 resumes from the details', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('export');
    const starts: [number, number][] = [];
    const activities = {
      async export_rows(job: { rows: number }) {
        const ctx = Context.current();
        const start: number = ctx.info.heartbeatDetails ?? 0;
        starts.push([ctx.info.attempt, start]);
        for (let row = start; row < job.rows; row++) {
          await ctx.sleep(50); // "export" one row
          ctx.heartbeat(row + 1);
          if (ctx.info.attempt === 1 && row + 1 === 5) await ctx.sleep(120_000); // stalls (cancelled at shutdown)
        }
        return { rows: job.rows, attempt: ctx.info.attempt, resumed_from: start };
      },
    };
    const id = uniqueId('export-ts');
    const handle = await withWorker(server, { taskQueue, activities }, async () => {
      const handle = await client.workflow.start(LongExport, { args: [{ rows: 10, heartbeatTimeout: '1s' }], taskQueue, workflowId: id });
      assert.deepEqual(await handle.result(), { rows: 10, attempt: 2, resumed_from: 5 });
      return handle;
    });
    assert.deepEqual(starts, [[1, 0], [2, 5]]);
    const events = (await handle.fetchHistory()).events ?? [];
    const started = events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED);
    assert.equal(started.length, 1);
    const attrs = started[0].activityTaskStartedEventAttributes!;
    assert.equal(attrs.attempt, 2);
    assert.equal(attrs.lastFailure?.timeoutFailureInfo?.timeoutType, temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT);
    checkShapes('heartbeat', { resumed_after_heartbeat_timeout: shape(events) });
  }));
