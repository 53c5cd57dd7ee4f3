import { describe, expect, it } from 'vitest';
import { binValues, valueAt } from './bins';

describe('range brush bins', () => {
  it('counts finite values in equal-width bins, the maximum in the last', () => {
    const b = binValues(new Float32Array([0, 0.1, 0.5, 0.99, 1, NaN]), 4);
    expect(b).toEqual({ lo: 0, hi: 1, counts: [2, 0, 1, 2], missing: 1 });
    expect(binValues([NaN], 3)).toEqual({ lo: 0, hi: 0, counts: [0, 0, 0], missing: 1 });
  });

  it('maps a brush position to a rounded value inside the span', () => {
    const b = binValues([10, 20], 5);
    expect(valueAt(b, 0.5)).toBeCloseTo(15);
    expect(valueAt(b, 2)).toBe(20);
    expect(valueAt(b, 0.3333)).toBeCloseTo(13.3);
  });
});
