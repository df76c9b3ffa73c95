// Seed 8, the old code: LoyaltyOrder without loyalty points.
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

const { ship_order } = proxyActivities<{ ship_order(order: string): Promise<string> }>({ startToCloseTimeout: '10s' });
export const approve = defineSignal('approve');

export async function LoyaltyOrder(order: string): Promise<string> {
  let approved = false;
  setHandler(approve, () => {
    approved = true;
  });
  await condition(() => approved);
  return await ship_order(order);
}
