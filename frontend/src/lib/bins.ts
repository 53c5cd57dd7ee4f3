/** Equal-width bins of a numeric column (NaN left out), for the filter bar's range brushes. */

export interface Bins {
  lo: number;
  hi: number;
  counts: number[];
  /** Values that are not finite (missing). */
  missing: number;
}

export function binValues(values: ArrayLike<number>, n: number): Bins {
  let lo = Infinity;
  let hi = -Infinity;
  let missing = 0;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (!Number.isFinite(v)) missing += 1;
    else {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const counts = new Array<number>(n).fill(0);
  if (lo > hi) return { lo: 0, hi: 0, counts, missing };
  const width = hi - lo || 1;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (Number.isFinite(v)) counts[Math.min(n - 1, Math.floor(((v - lo) / width) * n))] += 1;
  }
  return { lo, hi, counts, missing };
}

/** The value at `t` in [0, 1] of the bins' span, rounded to 3 significant digits beyond the span's scale. */
export function valueAt(bins: Bins, t: number): number {
  const v = bins.lo + Math.min(1, Math.max(0, t)) * (bins.hi - bins.lo);
  const step = Math.pow(10, Math.floor(Math.log10(Math.abs(bins.hi - bins.lo) || 1)) - 2);
  return Math.round(v / step) * step;
}
