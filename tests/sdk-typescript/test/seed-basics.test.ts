// Seeds 1-4 (TypeScript): payout approval, subscription billing, onboarding, saga transfer.
// History shapes are compared with the fixtures recorded from the reference server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Onboarding, PayoutApproval, SagaTransfer, SubscriptionBilling, cancelSubscription, decide, emailVerified, status } from '../src/seed-workflows';
import { TestServer, checkShapes, shape, uniqueId, uniqueTaskQueue, waitBlocked, withServerLog, withWorker } from './harness';

const server = new TestServer('seed-basics');
before(async () => {
  await server.start();
});
after(async () => {
  await server.kill('SIGTERM');
});

test('payout approval: condition(decision, 72 hours) completes on an approving signal', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('payout');
    const payouts: string[] = [];
    const activities = {
      async send_payout(p: { id: string; amount: number }) {
        payouts.push(p.id);
        return `paid ${p.amount} to ${p.id}`;
      },
    };
    const id = uniqueId('payout-ts');
    const handle = await withWorker(server, { taskQueue, activities }, async () => {
      const handle = await client.workflow.start(PayoutApproval, { args: [{ id, amount: 250 }], taskQueue, workflowId: id });
      await waitBlocked(handle, { event: 'TIMER_STARTED' });
      await handle.signal(decide, 'approve');
      assert.equal(await handle.result(), `paid 250 to ${id}`);
      return handle;
    });
    assert.deepEqual(payouts, [id]);
    checkShapes('payout', { approved: shape((await handle.fetchHistory()).events ?? []) });
  }));

test('payout approval: rejects when the (2 s) wait times out', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('payout-timeout');
    const payouts: string[] = [];
    const activities = {
      async send_payout(p: { id: string }) {
        payouts.push(p.id);
        return 'paid';
      },
    };
    const id = uniqueId('payout-ts-timeout');
    const t0 = performance.now();
    const handle = await withWorker(server, { taskQueue, activities }, async () => {
      const handle = await client.workflow.start(PayoutApproval, { args: [{ id, amount: 250, wait: '2s' }], taskQueue, workflowId: id });
      assert.equal(await handle.result(), 'rejected: no decision in time');
      return handle;
    });
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 2000, `the 2 s approval wait expired after ${elapsed} ms`);
    assert.deepEqual(payouts, []);
    checkShapes('payout', { timed_out: shape((await handle.fetchHistory()).events ?? []) });
  }));

test('subscription billing: a cancel signal wakes the 30-day wait within a second', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('billing');
    const calls: [string, number][] = [];
    const act = (name: string) => async (customer: string) => {
      calls.push([name, performance.now()]);
      return `${name} ${customer}`;
    };
    const activities = {
      charge_subscription: act('charge_subscription'),
      refund_unused_days: act('refund_unused_days'),
      send_cancellation_email: act('send_cancellation_email'),
    };
    const id = uniqueId('billing-ts');
    let tSignal = 0;
    const handle = await withWorker(server, { taskQueue, activities }, async () => {
      // First period test-shortened to 1 s, so the loop charges twice; then 30 days.
      const handle = await client.workflow.start(SubscriptionBilling, {
        args: [{ customer: 'cus-42', periods: ['1s', '30 days', '30 days'] }], taskQueue, workflowId: id,
      });
      await waitBlocked(handle, { event: 'TIMER_STARTED', count: 2 });
      tSignal = performance.now();
      await handle.signal(cancelSubscription);
      assert.deepEqual(await handle.result(), { charges: 2, cancelled: true });
      return handle;
    });
    assert.deepEqual(calls.map(([n]) => n), ['charge_subscription', 'charge_subscription', 'refund_unused_days', 'send_cancellation_email']);
    const woke = calls[2][1] - tSignal;
    assert.ok(woke < 1000, `the cancellation activity ran ${woke} ms after the cancel signal`);
    checkShapes('billing', { cancelled_in_second_period: shape((await handle.fetchHistory()).events ?? []) });
  }));

test('onboarding: a status query returns the current step, also after completion', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('onboarding');
    const calls: string[] = [];
    const activities = {
      async create_account() {
        calls.push('create_account');
        return 'ok';
      },
      async provision_workspace() {
        calls.push('provision_workspace');
        return 'ok';
      },
    };
    const id = uniqueId('onboarding-ts');
    const handle = await withWorker(server, { taskQueue, activities }, async () => {
      const handle = await client.workflow.start(Onboarding, { args: ['ada'], taskQueue, workflowId: id });
      await waitBlocked(handle, { event: 'ACTIVITY_TASK_COMPLETED' });
      assert.equal(await handle.query(status), 'awaiting-verification');
      assert.equal(await handle.query(status), 'awaiting-verification');
      assert.deepEqual(calls, ['create_account']);
      await handle.signal(emailVerified);
      assert.equal(await handle.result(), 'onboarded ada');
      // A closed workflow still answers (the worker replays its history).
      assert.equal(await handle.query(status), 'done');
      return handle;
    });
    assert.deepEqual(calls, ['create_account', 'provision_workspace']);
    checkShapes('onboarding', { verified: shape((await handle.fetchHistory()).events ?? []) });
  }));

test('saga transfer: step 3 fails, compensations run in reverse order, each once', { timeout: 120_000 }, () =>
  withServerLog(server, async () => {
    const client = await server.waitReady(30_000);
    const taskQueue = uniqueTaskQueue('saga');
    const sideEffects: string[] = [];
    const step = (name: string, fail = false) => async () => {
      sideEffects.push(name);
      if (fail) throw ApplicationFailure.nonRetryable('notification service rejected the transfer', 'NotifyRejected');
      return name;
    };
    const activities = {
      withdraw: step('withdraw'), deposit: step('deposit'), notify_parties: step('notify_parties', true),
      undo_deposit: step('undo_deposit'), undo_withdraw: step('undo_withdraw'),
    };
    const id = uniqueId('saga-ts');
    const { handle, err } = await withWorker(server, { taskQueue, activities }, async () => {
      const handle = await client.workflow.start(SagaTransfer, { args: [{ from: 'acct-1', to: 'acct-2', amount: 100 }], taskQueue, workflowId: id });
      const err = await handle.result().then((r) => assert.fail(`workflow succeeded with ${r}`), (e: unknown) => e);
      // A wrongly repeated compensation would show up within this second.
      await new Promise((r) => setTimeout(r, 1000));
      return { handle, err };
    });
    assert.ok(err instanceof WorkflowFailedError, `${err}`);
    const cause = err.cause;
    assert.ok(cause instanceof ApplicationFailure, `${cause}`);
    assert.equal(cause.type, 'TransferRolledBack');
    assert.match(cause.message, /notification service rejected/);
    assert.deepEqual(sideEffects, ['withdraw', 'deposit', 'notify_parties', 'undo_deposit', 'undo_withdraw']);
    assert.equal((await handle.describe()).status.name, 'FAILED');
    checkShapes('saga', { step3_failed: shape((await handle.fetchHistory()).events ?? []) });
  }));
