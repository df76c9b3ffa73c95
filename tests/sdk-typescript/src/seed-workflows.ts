// The seed documents' workflows, written the way the seeds write them (TypeScript SDK). Bundled
// by the seed tests' workers. Long waits ('72 hours', '30 days') are parameters so tests can
// shorten the ones they let expire; the ones a signal interrupts stay long.
import type { Duration } from '@temporalio/common';
import {
  ActivityFailure, ApplicationFailure, ChildWorkflowFailure, condition, continueAsNew, defineQuery, defineSignal,
  defineUpdate, executeChild, proxyActivities, setHandler, sleep,
} from '@temporalio/workflow';

type Acts = Record<string, (...args: any[]) => Promise<any>>;
const acts = proxyActivities<Acts>({ startToCloseTimeout: '10s' });
const noRetry = proxyActivities<Acts>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 1 } });

// ------------------------------------------------------------------ 1. payout approval

export const decide = defineSignal<[string]>('decide');

export async function PayoutApproval(payout: { id: string; amount: number; wait?: Duration }): Promise<string> {
  let decision: string | null = null;
  setHandler(decide, (d) => {
    decision = d;
  });
  if (!(await condition(() => decision !== null, payout.wait ?? '72 hours'))) {
    return 'rejected: no decision in time';
  }
  if (decision !== 'approve') return `rejected: ${decision}`;
  return await acts.send_payout(payout);
}

// ------------------------------------------------------------------ 2. subscription billing

export const cancelSubscription = defineSignal('cancel_subscription');

/** `periods`: the billing period of each cycle ('30 days' in the seeds; a test may shorten the first). */
export async function SubscriptionBilling(sub: { customer: string; periods: Duration[] }) {
  let cancelled = false;
  setHandler(cancelSubscription, () => {
    cancelled = true;
  });
  let charges = 0;
  for (const period of sub.periods) {
    await acts.charge_subscription(sub.customer);
    charges++;
    if (await condition(() => cancelled, period)) break;
  }
  if (cancelled) {
    await acts.refund_unused_days(sub.customer);
    await acts.send_cancellation_email(sub.customer);
  }
  return { charges, cancelled };
}

// ------------------------------------------------------------------ 3. onboarding

export const status = defineQuery<string>('status');
export const emailVerified = defineSignal('email_verified');

export async function Onboarding(user: string): Promise<string> {
  let step = 'starting';
  let verified = false;
  setHandler(status, () => step);
  setHandler(emailVerified, () => {
    verified = true;
  });
  step = 'creating-account';
  await acts.create_account(user);
  step = 'awaiting-verification';
  await condition(() => verified);
  step = 'provisioning';
  await acts.provision_workspace(user);
  step = 'done';
  return `onboarded ${user}`;
}

// ------------------------------------------------------------------ 4. saga transfer

export async function SagaTransfer(transfer: { from: string; to: string; amount: number }): Promise<string> {
  const compensations: string[] = [];
  try {
    await noRetry.withdraw(transfer);
    compensations.unshift('undo_withdraw');
    await noRetry.deposit(transfer);
    compensations.unshift('undo_deposit');
    await noRetry.notify_parties(transfer);
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    for (const name of compensations) await acts[name](transfer);
    throw ApplicationFailure.create({
      message: `transfer rolled back: ${err.cause?.message}`, type: 'TransferRolledBack', nonRetryable: true, cause: err,
    });
  }
  return 'transferred';
}

// ------------------------------------------------------------------ 5. batch of children

export async function BatchItem(item: string): Promise<string> {
  return await noRetry.process_item(item);
}

export async function BatchParent(batch: { child_ids: string[] }) {
  const results = await Promise.allSettled(
    batch.child_ids.map((id) => executeChild(BatchItem, { args: [id], workflowId: id })),
  );
  const failedIds: string[] = [];
  results.forEach((r, i) => {
    if (r.status === 'rejected') {
      if (!(r.reason instanceof ChildWorkflowFailure)) throw r.reason;
      failedIds.push(batch.child_ids[i]);
    }
  });
  return { succeeded: batch.child_ids.length - failedIds.length, failed: failedIds.length, failed_ids: failedIds };
}

// ------------------------------------------------------------------ 6. monitoring loop

interface MonitorState {
  service: string;
  max_runs: number;
  interval: Duration;
  checks?: string[];
}

export async function MonitoringLoop(state: MonitorState) {
  const result: string = await acts.check_service(state.service);
  const checks = [...(state.checks ?? []), result];
  await sleep(state.interval);
  if (checks.length < state.max_runs) {
    await continueAsNew<typeof MonitoringLoop>({ ...state, checks });
  }
  return { service: state.service, checks, run: checks.length };
}

// ------------------------------------------------------------------ 7. heartbeating activity

export async function LongExport(job: { rows: number; heartbeatTimeout: Duration }) {
  const { export_rows } = proxyActivities<Acts>({
    startToCloseTimeout: '60s',
    heartbeatTimeout: job.heartbeatTimeout,
    retry: { initialInterval: '100ms', maximumAttempts: 3 },
  });
  return await export_rows(job);
}

// ------------------------------------------------------------------ 9. updates

export const addItem = defineUpdate<{ items: string[]; handler_runs: number }, [string]>('add_item');
export const checkout = defineSignal('checkout');

export async function ShoppingCart() {
  const items: string[] = [];
  let handlerRuns = 0;
  let checkedOut = false;
  setHandler(
    addItem,
    (item) => {
      handlerRuns++;
      items.push(item);
      return { items: [...items], handler_runs: handlerRuns };
    },
    {
      validator: (item) => {
        if (!item || item.startsWith('-')) throw new Error(`invalid item '${item}'`);
      },
    },
  );
  setHandler(checkout, () => {
    checkedOut = true;
  });
  await condition(() => checkedOut);
  return { items, handler_runs: handlerRuns };
}

// ------------------------------------------------------------------ 10. cancel / terminate

export async function LongRunningJob(hours: number): Promise<string> {
  await sleep(hours * 3600 * 1000);
  return 'finished';
}
