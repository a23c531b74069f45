import { useState } from 'preact/hooks';
import { api, listOf } from '../api.js';
import { Card, ErrorNote, Field, html, Table, useApi } from '../ui.js';

export function Credits() {
  const tx = useApi('/user/credit-transactions');
  const [code, setCode] = useState('');
  const [amount, setAmount] = useState('10');
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const redeem = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const r = await api('/coupons/redeem', { body: { code } });
      setNote(`Redeemed ${r.coupon_code ?? code}: new balance $${r.new_balance}`);
      setCode('');
      tx.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const topUp = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const r = await api('/payments/checkout', { body: { amount_usd: Number(amount) } });
      if (r.url ?? r.checkout_url) location.href = r.url ?? r.checkout_url;
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return html`<div class="grid">
    <${Card} title="Top up">
      <form class="form inline" onSubmit=${topUp}>
        <${Field} label="Amount (USD)" name="amount" type="number" value=${amount} onInput=${setAmount} required />
        <button type="submit">Pay with Stripe</button>
      </form>
    <//>
    <${Card} title="Redeem a coupon">
      <form class="form inline" onSubmit=${redeem}>
        <${Field} label="Coupon code" name="coupon" value=${code} onInput=${setCode} required />
        <button type="submit">Redeem</button>
      </form>
      ${note ? html`<p class="ok" role="status" data-testid="coupon-result">${note}</p>` : null}
      <${ErrorNote} error=${error} />
    <//>
    <${Card} title="Transactions">
      <${ErrorNote} error=${tx.error} />
      <${Table} label="Credit transactions" rows=${listOf(tx.data)} columns=${[
        ['created_at', 'When'],
        ['kind', 'Kind'],
        ['amount_usd', 'Amount (USD)'],
        ['amount', 'Amount (USD)'],
        ['balance_after_usd', 'Balance after'],
        ['balance_after', 'Balance after'],
        ['description', 'Description'],
        ['reference', 'Reference'],
      ]} />
    <//>
  </div>`;
}
