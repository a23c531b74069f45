/** An integer divided by 10^scale, as an exact decimal string ("2500000", 12 → "0.0000025"). */
export function scaledToDecimal(n: number, scale: number): string {
  const neg = n < 0;
  const s = String(Math.abs(Math.trunc(n))).padStart(scale + 1, '0');
  const int = s.slice(0, s.length - scale);
  const frac = s.slice(s.length - scale).replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}
