// Workflows for the TypeScript end-to-end tests. Bundled by the worker (workflowsPath).
import { proxyActivities, sleep } from '@temporalio/workflow';
import type { OrderActivities, PaymentActivities, Order, OrderResult } from './types';

export async function OrderWorkflow(order: Order): Promise<OrderResult> {
  const acts = proxyActivities<OrderActivities>({
    startToCloseTimeout: '10s',
    retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '1s', maximumAttempts: 10 },
  });
  const steps: string[] = [];
  steps.push(await acts.charge_payment(order));
  steps.push(await acts.decrement_inventory(order));
  steps.push(await acts.send_confirmation(order));
  steps.push(await acts.notify_warehouse(order));
  return { order_id: order.order_id, steps };
}

export async function PaymentWorkflow(req: { mode: 'flag' | 'type' }): Promise<string> {
  const { charge_card } = proxyActivities<PaymentActivities>({
    startToCloseTimeout: '10s',
    retry: {
      initialInterval: '100ms',
      maximumInterval: '500ms',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ['InvalidAccount'],
    },
  });
  return await charge_card(req);
}

export async function TimerWorkflow(ms: number): Promise<number> {
  const before = Date.now(); // workflow time (deterministic), from WorkflowTaskStarted event times
  await sleep(ms);
  return Date.now() - before;
}
