import { describe, expect, it } from 'vitest';
import { decodeSelection, encodeSelection, normalizeIds, tryDecodeSelection } from './selection';

describe('selection encoding', () => {
  it('encodes runs of consecutive ids as delta-encoded base-36 ranges', () => {
    expect(encodeSelection([0, 1, 2, 5, 9, 10])).toBe('0-2.2.3-1');
    expect(encodeSelection([])).toBe('');
    expect(encodeSelection([7])).toBe('7');
    expect(encodeSelection([36])).toBe('10');
  });

  it('sorts and de-duplicates before encoding', () => {
    expect(encodeSelection([10, 9, 5, 2, 1, 0, 5, 9])).toBe('0-2.2.3-1');
    expect(normalizeIds([3, 1, 3, -1, 2.5, 0])).toEqual([0, 1, 3]);
  });

  it('round-trips random selections', () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let t = 0; t < 200; t += 1) {
      const n = Math.floor(rand() * 300);
      const ids = Array.from({ length: n }, () => Math.floor(rand() * (rand() < 0.5 ? 400 : 1_000_000)));
      expect(decodeSelection(encodeSelection(ids))).toEqual(normalizeIds(ids));
    }
  });

  it('is compact for a dense lasso', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => 10_000 + i).filter((i) => i % 97 !== 0);
    const text = encodeSelection(ids);
    expect(text.length).toBeLessThan(600);
    expect(decodeSelection(text)).toEqual(ids);
    expect(text).toMatch(/^[0-9a-z.-]+$/);
  });

  it('rejects malformed text', () => {
    expect(() => decodeSelection('0-2..3')).toThrow(RangeError);
    expect(() => decodeSelection('0-')).toThrow(/bad selection token/);
    expect(() => decodeSelection('A')).toThrow(RangeError);
    expect(tryDecodeSelection('%%%')).toEqual([]);
    expect(tryDecodeSelection(null)).toEqual([]);
  });
});
