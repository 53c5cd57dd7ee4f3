/** Number formatting, one place for the whole UI. */

export function formatPercent(ratio: number, digits = 1): string {
  if (!Number.isFinite(ratio)) return '–';
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** Scores: 3 significant digits; exponents only for very small or very large magnitudes. */
export function formatScore(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a < 1e-4 || a >= 1e5) return v.toExponential(2);
  if (a >= 100) return v.toFixed(0);
  return v.toPrecision(3);
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** The percentile of a [0, 1] quantile, as "p50" style text. */
export function formatQuantile(q: number): string {
  return `${Math.round(q * 100)}%`;
}

export function pcName(index: number): string {
  return `PC ${index + 1}`;
}

/** Axis tick labels: as many decimals as the tick step needs, and no more. */
export function formatTick(v: number, step: number): string {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || (step > 0 && step < 1e-4)) return v.toExponential(1);
  const decimals = step > 0 ? Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9))) : 2;
  return v.toFixed(decimals);
}

/** The step between consecutive ticks (0 for fewer than two). */
export function tickStep(ticks: readonly number[]): number {
  return ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 0;
}
