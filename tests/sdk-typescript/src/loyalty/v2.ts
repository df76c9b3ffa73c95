// Seed 8, the new code: orders started on it earn loyalty points; running ones keep the old path.
import { condition, defineSignal, patched, proxyActivities, setHandler } from '@temporalio/workflow';

const { ship_order, add_loyalty_points } = proxyActivities<{
  ship_order(order: string): Promise<string>;
  add_loyalty_points(order: string): Promise<number>;
}>({ startToCloseTimeout: '10s' });
export const approve = defineSignal('approve');

export async function LoyaltyOrder(order: string): Promise<string> {
  let approved = false;
  setHandler(approve, () => {
    approved = true;
  });
  const earnsPoints = patched('add-loyalty-points');
  await condition(() => approved);
  const shipped = await ship_order(order);
  if (earnsPoints) {
    const points = await add_loyalty_points(order);
    return `${shipped} +${points} points`;
  }
  return shipped;
}
