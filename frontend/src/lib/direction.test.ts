import { describe, expect, it } from 'vitest';
import { decodeGroup, directionRequest, encodeGroup, formatSeparation, groupIds, groupTitle, unknownLabel, type GroupSpec } from './direction';

describe('direction groups in the URL', () => {
  it('round-trips labels (colons and spaces included) and selections', () => {
    const groups: GroupSpec[] = [
      { kind: 'label', label: 'T-shirt/top' },
      { kind: 'label', label: 'a: b c' },
      { kind: 'ids', ids: [0, 1, 2, 5, 9, 10, 4000] },
    ];
    for (const g of groups) {
      const text = encodeGroup(g);
      expect(decodeGroup(new URLSearchParams(new URLSearchParams({ da: text }).toString()).get('da'))).toEqual(g);
    }
    expect(encodeGroup({ kind: 'ids', ids: [10, 9, 9, 0] })).toBe('s:0.8-1');
  });

  it('reads nothing from bad or empty values', () => {
    for (const bad of [null, '', 'l:', 's:', 's:%%', 'x:Coat', 'Coat']) expect(decodeGroup(bad)).toBeNull();
  });

  it('titles groups', () => {
    expect(groupTitle({ kind: 'label', label: 'Coat' })).toBe('Coat');
    expect(groupTitle({ kind: 'ids', ids: Array.from({ length: 1200 }, (_, i) => i) })).toBe('selection (1,200)');
    expect(groupTitle(null)).toBe('—');
  });

  it('turns a label into the ids of its samples', () => {
    const labels = ['cat', 'dog', 'fox'];
    const codes = Int32Array.from([0, 1, 2, 1, -1, 1, 0]);
    expect(groupIds({ kind: 'label', label: 'dog' }, labels, codes)).toEqual([1, 3, 5]);
    expect(groupIds({ kind: 'label', label: 'cow' }, labels, codes)).toEqual([]);
    expect(groupIds({ kind: 'label', label: 'dog' }, labels, null)).toBeNull();
    expect(groupIds({ kind: 'ids', ids: [5, 1, 5] }, labels, null)).toEqual([1, 5]);
  });

  it('asks by label names when both groups are labels, else by ids', () => {
    const labels = ['cat', 'dog'];
    const codes = Int32Array.from([0, 1, 1, 0]);
    expect(directionRequest({ kind: 'label', label: 'cat' }, { kind: 'label', label: 'dog' }, labels, null)).toEqual({ label_a: 'cat', label_b: 'dog' });
    expect(directionRequest({ kind: 'label', label: 'cat' }, { kind: 'ids', ids: [2, 1] }, labels, codes)).toEqual({ ids_a: [0, 3], ids_b: [1, 2] });
    expect(directionRequest({ kind: 'label', label: 'cat' }, { kind: 'ids', ids: [2] }, labels, null)).toBeNull();
  });
});

describe('direction details that may be missing', () => {
  it('reads a separation the server could not measure as a dash', () => {
    expect(formatSeparation(1.2345)).toBe('separation 1.23 σ');
    expect(formatSeparation(null)).toBe('separation –');
    expect(formatSeparation(undefined)).toBe('separation –');
    expect(formatSeparation(Infinity)).toBe('separation –');
  });

  it('names a label group whose label the run lacks', () => {
    const labels = ['cat', 'dog'];
    expect(unknownLabel({ kind: 'label', label: 'cow' }, { kind: 'ids', ids: [1] }, labels)).toBe('cow');
    expect(unknownLabel({ kind: 'ids', ids: [1] }, { kind: 'label', label: 'dog' }, labels)).toBeNull();
  });
});
