/** Helpers for the quantile slider and the quantile-binned histograms. */
import { roundQ } from './urlState';

export { roundQ };

/** How a key press moves the slider: arrows by 1 %, PageUp/PageDown by 10 %, Home/End to the ends. */
export function stepQuantile(q: number, key: string): number | null {
  switch (key) {
    case 'ArrowRight':
    case 'ArrowUp':
      return roundQ(q + 0.01);
    case 'ArrowLeft':
    case 'ArrowDown':
      return roundQ(q - 0.01);
    case 'PageUp':
      return roundQ(q + 0.1);
    case 'PageDown':
      return roundQ(q - 0.1);
    case 'Home':
      return 0;
    case 'End':
      return 1;
    default:
      return null;
  }
}

/** Totals per bin (sum over labels when stacked). */
export function binTotals(counts: readonly number[], byLabel?: Record<string, readonly number[]> | null): number[] {
  if (!byLabel) return counts.slice();
  const totals = counts.map(() => 0);
  for (const series of Object.values(byLabel)) series.forEach((c, i) => (totals[i] += c));
  return totals;
}

/** Cumulative share of samples at each edge: cdf[0] = 0 ... cdf[bins] = 1. */
export function edgeCdf(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const cdf = [0];
  let acc = 0;
  for (const c of counts) {
    acc += c;
    cdf.push(total > 0 ? acc / total : 0);
  }
  return cdf;
}

/**
 * The score at quantile q, interpolated linearly within bins (exact at the edges of
 * quantile-based bins). Used to move the histogram marker before the server answers.
 */
export function scoreAtQuantile(edges: readonly number[], counts: readonly number[], q: number): number {
  if (edges.length < 2) return NaN;
  const cdf = edgeCdf(counts);
  const t = Math.min(1, Math.max(0, q));
  for (let i = 0; i < counts.length; i += 1) {
    if (t <= cdf[i + 1] || i === counts.length - 1) {
      const span = cdf[i + 1] - cdf[i];
      const f = span > 0 ? (t - cdf[i]) / span : 0;
      return edges[i] + Math.min(1, Math.max(0, f)) * (edges[i + 1] - edges[i]);
    }
  }
  return edges[edges.length - 1];
}

/** The inverse of scoreAtQuantile: the share of samples below `score`. */
export function quantileOfScore(edges: readonly number[], counts: readonly number[], score: number): number {
  if (edges.length < 2) return NaN;
  const cdf = edgeCdf(counts);
  if (score <= edges[0]) return 0;
  if (score >= edges[edges.length - 1]) return 1;
  for (let i = 0; i < counts.length; i += 1) {
    if (score <= edges[i + 1]) {
      const w = edges[i + 1] - edges[i];
      const f = w > 0 ? (score - edges[i]) / w : 1;
      return cdf[i] + f * (cdf[i + 1] - cdf[i]);
    }
  }
  return 1;
}

export type HistogramAxis = 'score' | 'quantile';

export interface BinBox {
  /** Left and right in [0, 1] of the plot width. */
  x0: number;
  x1: number;
  /** Height measure: density (count / width) on the score axis, count on the quantile axis. */
  height: number;
}

/**
 * Where each bin goes. On the score axis bins keep their true (unequal) widths and bars show
 * density, so area = count; on the quantile axis each bin sits at its cumulative share.
 */
export function binLayout(edges: readonly number[], counts: readonly number[], axis: HistogramAxis): BinBox[] {
  if (edges.length !== counts.length + 1) {
    throw new RangeError(`${edges.length} edges for ${counts.length} bins; expected ${counts.length + 1}`);
  }
  if (axis === 'quantile') {
    const cdf = edgeCdf(counts);
    return counts.map((c, i) => ({ x0: cdf[i], x1: cdf[i + 1], height: c }));
  }
  const lo = edges[0];
  const span = edges[edges.length - 1] - lo || 1;
  return counts.map((c, i) => {
    const w = (edges[i + 1] - edges[i]) / span;
    return { x0: (edges[i] - lo) / span, x1: (edges[i + 1] - lo) / span, height: w > 0 ? c / w : 0 };
  });
}

/**
 * A throttle that always delivers the latest value: at most one call per `wait` ms, and the
 * last value is delivered after the burst ends.
 */
export function throttleLatest<T>(fn: (value: T) => void, wait: number): ((value: T) => void) & { cancel(): void } {
  let last = -Infinity;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let pending: { value: T } | null = null;
  const fire = () => {
    timer = null;
    if (pending) {
      const { value } = pending;
      pending = null;
      last = Date.now();
      fn(value);
    }
  };
  const throttled = (value: T) => {
    pending = { value };
    const now = Date.now();
    if (timer === null) {
      if (now - last >= wait) fire();
      else timer = setTimeout(fire, wait - (now - last));
    }
  };
  throttled.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    pending = null;
  };
  return throttled;
}
