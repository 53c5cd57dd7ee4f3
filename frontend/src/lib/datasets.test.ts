import { describe, expect, it } from 'vitest';
import type { RunInfo, ShiftRow } from '../api';
import { datasetPair, describeShift, formatMean, sameModel, shares, sharedLayers, shiftSize, sortShiftRows } from './datasets';

function run(id: string, model: string | null, data: string, layers = ['input', 'fc']): RunInfo {
  return {
    id,
    version: '1',
    name: id,
    n_samples: 10,
    per_token: false,
    model_class: null,
    model_fingerprint: model,
    data_fingerprint: data,
    rendering_kind: null,
    labels: { present: false, names: null, values: [] },
    columns: [],
    layers: layers.map((name) => ({ name, dim: 2, n_components: 2, explained_variance_ratio: [0.6, 0.4], total_variance: 1, pca_method: 'exact' })),
  };
}

describe('data-set pairs', () => {
  const runs = [run('trained', 'm1', 'test'), run('untrained', 'm0', 'test'), run('trained-inverted', 'm1', 'inverted'), run('text', 'm2', 'words')];

  it('defaults to the first pair of one model over different data', () => {
    expect(datasetPair(runs, null, null)).toEqual(['trained', 'trained-inverted']);
    expect(datasetPair(runs, 'trained-inverted', null)).toEqual(['trained-inverted', 'trained']);
  });

  it('keeps an asked pair, and falls back when a run is unknown or repeated', () => {
    expect(datasetPair(runs, 'untrained', 'text')).toEqual(['untrained', 'text']);
    expect(datasetPair(runs, 'nope', 'nope')).toEqual(['trained', 'trained-inverted']);
    expect(datasetPair(runs, 'text', 'text')).toEqual(['text', 'trained']);
    expect(datasetPair([runs[0], runs[1]], null, null)).toEqual(['trained', 'untrained']);
    expect(datasetPair([runs[0]], null, null)).toBeNull();
  });

  it('tells models apart by fingerprint', () => {
    expect(sameModel(runs[0], runs[2])).toBe(true);
    expect(sameModel(runs[0], runs[1])).toBe(false);
    expect(sameModel(run('a', null, 'x'), run('b', null, 'y'))).toBe(false);
  });

  it('lists the layers both runs have, in the reference order', () => {
    expect(sharedLayers(run('a', 'm', 'x', ['input', 'conv', 'fc']), run('b', 'm', 'y', ['fc', 'input']))).toEqual(['input', 'fc']);
  });
});

describe('overlaid histograms', () => {
  it('turns counts into shares', () => {
    expect(shares([1, 3, 0])).toEqual([0.25, 0.75, 0]);
    expect(shares([0, 0])).toEqual([0, 0]);
  });

  it('describes a shift in words', () => {
    expect(describeShift(1.234)).toBe('B sits far higher than A (+1.23 SD)');
    expect(describeShift(-0.6)).toBe('B sits moderately lower than A (−0.60 SD)');
    expect(describeShift(0.05)).toBe('B sits about where A does (+0.05 SD)');
    expect(describeShift(null)).toMatch(/no shift/);
    expect(describeShift(0.02, 0.46)).toBe("B's mean sits where A's does (+0.02 SD), but its shape differs");
    expect(describeShift(0.02, 0.05)).toBe('B sits about where A does (+0.02 SD)');
  });
});

describe('means beside their spread', () => {
  it('shows rounding noise around zero as 0', () => {
    expect(formatMean(-2.53e-11, 0.0226)).toBe('0');
    expect(formatMean(-0.137, 0.0226)).toBe('-0.137');
    expect(formatMean(1e-5, null)).toBe('1.00e-5');
    expect(formatMean(null, 1)).toBe('–');
  });
});

describe('ranking the components by a measure', () => {
  const row = (index: number, smd: number | null, ks: number | null, wasserstein: number | null): ShiftRow => ({
    index,
    name: `PC ${index + 1}`,
    explained_variance_ratio: 0.1,
    w1_total_sd: wasserstein === null ? null : wasserstein / 10,
    smd,
    ks,
    ks_pvalue: null,
    wasserstein,
    mean_reference: 0,
    mean_other: 0,
    std_reference: 1,
    std_other: 1,
  });
  // PC 1 carries the brightness change: by far the largest W₁, a modest SMD; PC 4 has tiny
  // variance, so a small move is a large SMD
  const rows = [row(3, -2.4, 0.5, 0.02), row(0, 0.9, 0.35, 6.1), row(1, 0.9, 0.6, 0.4), row(2, null, null, null), row(4, 0.1, 0.05, 0.3)];
  const order = (by: 'shift' | 'smd' | 'ks' | 'w1') => sortShiftRows(rows, by).map((r) => r.index);

  it('ranks by |SMD|, the KS statistic or W₁, largest first', () => {
    expect(order('smd')).toEqual([3, 0, 1, 4, 2]); // |−2.4| first; the 0.9 tie in component order
    expect(order('ks')).toEqual([1, 3, 0, 4, 2]);
    expect(order('w1')).toEqual([0, 1, 4, 3, 2]);
    expect(order('shift')).toEqual([0, 1, 4, 3, 2]); // W₁ over the layer's total SD: the default
    expect(shiftSize(row(0, 1, 0.3, 2), 'shift')).toBe(0.2);
  });

  it('puts rows it cannot measure last and leaves the input alone', () => {
    const before = rows.map((r) => r.index);
    expect(sortShiftRows([row(1, null, 0.2, 1), row(0, NaN, 0.1, 2)], 'smd').map((r) => r.index)).toEqual([0, 1]);
    expect(rows.map((r) => r.index)).toEqual(before);
    expect(shiftSize(row(0, -1.5, 0.3, 2), 'smd')).toBe(1.5);
    expect(shiftSize(row(0, NaN, 0.3, 2), 'smd')).toBeNull();
    expect(shiftSize(row(0, 1, 0.3, 2), 'w1')).toBe(2);
  });
});
