import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { binLayout, binTotals, edgeCdf, quantileOfScore, scoreAtQuantile, stepQuantile, throttleLatest } from './quantile';

describe('slider keys', () => {
  it('moves by 1 % with arrows and 10 % with PageUp/PageDown, clamped', () => {
    expect(stepQuantile(0.5, 'ArrowRight')).toBe(0.51);
    expect(stepQuantile(0.5, 'ArrowLeft')).toBe(0.49);
    expect(stepQuantile(0.5, 'ArrowUp')).toBe(0.51);
    expect(stepQuantile(0.5, 'PageUp')).toBe(0.6);
    expect(stepQuantile(0.5, 'PageDown')).toBe(0.4);
    expect(stepQuantile(0.95, 'PageUp')).toBe(1);
    expect(stepQuantile(0.005, 'ArrowLeft')).toBe(0);
    expect(stepQuantile(0.3, 'Home')).toBe(0);
    expect(stepQuantile(0.3, 'End')).toBe(1);
    expect(stepQuantile(0.3, 'a')).toBeNull();
  });

  it('does not drift over many steps', () => {
    let q = 0;
    for (let i = 0; i < 37; i += 1) q = stepQuantile(q, 'ArrowRight')!;
    expect(q).toBe(0.37);
  });
});

describe('quantile-binned histograms', () => {
  const edges = [-2, -1, 0, 4];
  const counts = [10, 10, 20];

  it('computes the cumulative share at each edge', () => {
    expect(edgeCdf(counts)).toEqual([0, 0.25, 0.5, 1]);
    expect(edgeCdf([0, 0])).toEqual([0, 0, 0]);
  });

  it('maps quantiles to scores and back', () => {
    expect(scoreAtQuantile(edges, counts, 0)).toBe(-2);
    expect(scoreAtQuantile(edges, counts, 0.25)).toBe(-1);
    expect(scoreAtQuantile(edges, counts, 0.75)).toBe(2);
    expect(scoreAtQuantile(edges, counts, 1)).toBe(4);
    for (const q of [0, 0.1, 0.3, 0.5, 0.8, 1]) {
      expect(quantileOfScore(edges, counts, scoreAtQuantile(edges, counts, q))).toBeCloseTo(q, 10);
    }
    expect(quantileOfScore(edges, counts, -10)).toBe(0);
    expect(quantileOfScore(edges, counts, 10)).toBe(1);
  });

  it('lays out true widths with density heights on the score axis', () => {
    const boxes = binLayout(edges, counts, 'score');
    expect(boxes.map((b) => b.x0)).toEqual([0, 1 / 6, 2 / 6]);
    expect(boxes[2].x1).toBe(1);
    // area (width * height) is proportional to the count
    const areas = boxes.map((b) => (b.x1 - b.x0) * b.height);
    expect(areas[0]).toBeCloseTo(10);
    expect(areas[2]).toBeCloseTo(20);
  });

  it('lays out cumulative shares on the quantile axis', () => {
    const boxes = binLayout(edges, counts, 'quantile');
    expect(boxes.map((b) => [b.x0, b.x1])).toEqual([
      [0, 0.25],
      [0.25, 0.5],
      [0.5, 1],
    ]);
    expect(() => binLayout([0, 1], [1, 2], 'score')).toThrow(RangeError);
  });

  it('sums label series into totals', () => {
    expect(binTotals([1, 1], { a: [1, 2], b: [3, 0] })).toEqual([4, 2]);
    expect(binTotals([1, 1], null)).toEqual([1, 1]);
  });
});

describe('throttleLatest', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('calls at once, then at most once per interval, always ending on the latest value', () => {
    const calls: number[] = [];
    const f = throttleLatest((v: number) => calls.push(v), 100);
    f(1);
    f(2);
    f(3);
    expect(calls).toEqual([1]);
    vi.advanceTimersByTime(100);
    expect(calls).toEqual([1, 3]);
    f(4);
    vi.advanceTimersByTime(50);
    f(5);
    vi.advanceTimersByTime(100);
    expect(calls).toEqual([1, 3, 5]);
    f(6);
    f.cancel();
    vi.advanceTimersByTime(500);
    expect(calls).toEqual([1, 3, 5]);
  });
});
