/**
 * Money is integer micro-dollars (1 USD = 1,000,000). Prices are integer micro-dollars per
 * million tokens (or per unit). Floats appear only at the JSON edge.
 */
export type Micros = number & { readonly __brand: 'micros' };

export const MICROS_PER_USD = 1_000_000;

export const micros = (n: number): Micros => {
  if (!Number.isSafeInteger(n)) throw new RangeError(`not an integer amount of micro-dollars: ${n}`);
  return n as Micros;
};

/** USD (a JSON number, e.g. 9.87) to micro-dollars, rounded to the nearest micro-dollar. */
export const usdToMicros = (usd: number): Micros => micros(Math.round(usd * MICROS_PER_USD));

/** Micro-dollars to USD for the JSON edge only. */
export const microsToUsd = (m: number): number => m / MICROS_PER_USD;

/**
 * Exact decimal string → integer scaled by 10^scale, rounding up any remainder.
 * `decimalToScaled("0.0000025", 12)` = 2_500_000 (USD per token → micro-dollars per million tokens).
 * Returns null for negative, empty or malformed input.
 */
export function decimalToScaled(value: string | number, scale: number): number | null {
  const s = typeof value === 'number' ? numberToPlain(value) : value.trim();
  const m = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s);
  if (!m || (m[1] === '' && (m[2] ?? '') === '')) return null;
  let digits = (m[1] ?? '') + (m[2] ?? '');
  let pointAt = (m[1] ?? '').length + Number(m[3] ?? 0) + scale;
  digits = digits.replace(/^0+(?=\d)/, (z) => {
    pointAt -= z.length;
    return '';
  });
  if (pointAt <= 0) return /[1-9]/.test(digits) ? 1 : 0;
  const intPart =
    digits.length >= pointAt ? digits.slice(0, pointAt) : digits + '0'.repeat(pointAt - digits.length);
  const rest = digits.length > pointAt ? digits.slice(pointAt) : '';
  let n = BigInt(intPart || '0');
  if (/[1-9]/.test(rest)) n += 1n;
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(n);
}

function numberToPlain(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  return n.toString();
}

/** Token price per million tokens, in micro-dollars, from an OpenRouter per-token USD string. */
export const perTokenUsdToMicrosPerM = (v: string | number | null | undefined): number | null =>
  v === null || v === undefined ? null : decimalToScaled(v, 12);

/** Per-million-token USD price (operator config, e.g. 0.15) to micro-dollars per million. */
export const perMillionUsdToMicrosPerM = (v: string | number): number | null => decimalToScaled(v, 6);

/** Per-unit USD price (per request, per image) to micro-dollars. */
export const usdStringToMicros = (v: string | number | null | undefined): number | null =>
  v === null || v === undefined ? null : decimalToScaled(v, 6);
