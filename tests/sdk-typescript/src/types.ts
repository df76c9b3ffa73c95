export interface Order {
  order_id: string;
  amount: number;
  item: string;
  qty: number;
}

export interface OrderResult {
  order_id: string;
  steps: string[];
}

export interface OrderActivities {
  charge_payment(order: Order): Promise<string>;
  decrement_inventory(order: Order): Promise<string>;
  send_confirmation(order: Order): Promise<string>;
  notify_warehouse(order: Order): Promise<string>;
}

export interface PaymentActivities {
  charge_card(req: { mode: 'flag' | 'type' }): Promise<string>;
}
