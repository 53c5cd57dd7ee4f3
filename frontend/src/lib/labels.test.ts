import { describe, expect, it } from 'vitest';
import { dominantLabel, labelCounts } from './labels';

describe('label summaries', () => {
  it('counts labels, most frequent first, ties in first-seen order', () => {
    expect(labelCounts(['b', 'a', 'b', 'c', 'a', 'b'])).toEqual([
      { label: 'b', count: 3 },
      { label: 'a', count: 2 },
      { label: 'c', count: 1 },
    ]);
    expect(labelCounts(['x', 'y'])).toEqual([
      { label: 'x', count: 1 },
      { label: 'y', count: 1 },
    ]);
  });

  it('groups missing labels', () => {
    expect(labelCounts([null, undefined, '', 'a'])).toEqual([
      { label: '—', count: 3 },
      { label: 'a', count: 1 },
    ]);
  });

  it('summarises the dominant label as "k/n name"', () => {
    const labels = ['Sandal', 'Sandal', 'Sneaker', 'Sandal', 'Sandal', 'Sandal', 'Sandal', 'Sandal'];
    expect(dominantLabel(labels)).toEqual({ label: 'Sandal', count: 7, total: 8, text: '7/8 Sandal' });
    expect(dominantLabel([])).toBeNull();
  });
});
