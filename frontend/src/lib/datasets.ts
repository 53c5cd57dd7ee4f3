/** Pure helpers of the Data sets view: which two runs to compare, and shares for overlaid histograms. */
import type { RunInfo, ShiftRow } from '../api';
import { formatScore } from './format';
import type { ShiftSort } from './urlState';

/** Whether two runs come from the same model (model-free input-space runs count as one model). */
export function sameModel(a: RunInfo, b: RunInfo): boolean {
  const fa = a.model_fingerprint ?? null;
  const fb = b.model_fingerprint ?? null;
  return fa !== null && fa === fb;
}

/**
 * The reference and the other run: the asked ones when valid and different; else the first pair
 * of runs of one model over different data; else the first two runs. null with fewer than two.
 */
export function datasetPair(runs: readonly RunInfo[], askedA: string | null, askedB: string | null): [string, string] | null {
  if (runs.length < 2) return null;
  const ids = runs.map((r) => r.id);
  const a = askedA && ids.includes(askedA) ? askedA : null;
  const b = askedB && ids.includes(askedB) && askedB !== a ? askedB : null;
  if (a && b) return [a, b];
  const differentData = (x: RunInfo, y: RunInfo) => (x.data_fingerprint ?? x.id) !== (y.data_fingerprint ?? y.id);
  const candidates = a ? runs.filter((r) => r.id === a) : runs;
  for (const x of candidates) {
    for (const y of runs) {
      if (y.id !== x.id && (!b || y.id === b) && sameModel(x, y) && differentData(x, y)) return [x.id, y.id];
    }
  }
  if (a) return [a, b ?? ids.find((i) => i !== a)!];
  if (b) return [ids.find((i) => i !== b)!, b];
  return [ids[0], ids[1]];
}

/**
 * A mean beside its spread: "0" when it is within a thousandth of `sd` of zero (the reference's
 * mean on its own centred components is 0 up to rounding, not "-2.5e-11").
 */
export function formatMean(mean: number | null, sd: number | null): string {
  if (mean === null || !Number.isFinite(mean)) return '–';
  if (sd !== null && Number.isFinite(sd) && Math.abs(mean) < 1e-3 * Math.abs(sd)) return '0';
  return formatScore(mean);
}

/** Counts as shares of their total, so data sets of different sizes overlay on one scale. */
export function shares(counts: readonly number[]): number[] {
  const total = counts.reduce((s, c) => s + c, 0);
  return counts.map((c) => (total > 0 ? c / total : 0));
}

/** The layers both runs have, in the reference's order. */
export function sharedLayers(a: RunInfo, b: RunInfo): string[] {
  const other = new Set(b.layers.map((l) => l.name));
  return a.layers.map((l) => l.name).filter((n) => other.has(n));
}

/** A standardised mean difference in words: "B sits 1.2 SD higher than A". */
export function describeShift(smd: number | null, ks: number | null = null): string {
  if (smd === null || !Number.isFinite(smd)) return 'no shift can be measured (constant scores)';
  const a = Math.abs(smd);
  const size = a < 0.2 ? 'about where' : a < 0.5 ? 'slightly' : a < 0.8 ? 'moderately' : 'far';
  const signed = `${smd >= 0 ? '+' : '−'}${a.toFixed(2)} SD`;
  // an unmoved mean can hide a changed spread or shape (a bimodal A against a unimodal B)
  if (a < 0.2 && ks !== null && ks >= 0.2) return `B's mean sits where A's does (${signed}), but its shape differs`;
  if (a < 0.2) return `B sits ${size} A does (${signed})`;
  return `B sits ${size} ${smd > 0 ? 'higher' : 'lower'} than A (${smd >= 0 ? '+' : '−'}${a.toFixed(2)} SD)`;
}

/** How large a row's shift is by one measure: W₁ over the layer's total SD, |SMD|, KS, or W₁ (null: not measured). */
export function shiftSize(row: ShiftRow, by: ShiftSort): number | null {
  const v = by === 'shift' ? row.w1_total_sd : by === 'smd' ? row.smd : by === 'ks' ? row.ks : row.wasserstein;
  return v === null || !Number.isFinite(v) ? null : Math.abs(v);
}

/**
 * The components ranked by one measure, largest first; rows it could not measure go last, and
 * ties keep component order. |SMD| favours a component with tiny variance that moved a little;
 * W₁ (in score units) favours the component whose scores moved furthest, KS any change of shape.
 */
export function sortShiftRows(rows: readonly ShiftRow[], by: ShiftSort): ShiftRow[] {
  return [...rows].sort((a, b) => {
    const x = shiftSize(a, by);
    const y = shiftSize(b, by);
    if (x === null || y === null) return x === y ? a.index - b.index : x === null ? 1 : -1;
    return y - x || a.index - b.index;
  });
}
