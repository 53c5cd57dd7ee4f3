import { describe, expect, it } from 'vitest';
import type { RunInfo } from '../api';
import { datasetPair, describeShift, formatMean, sameModel, shares, sharedLayers } from './datasets';

function run(id: string, model: string | null, data: string, layers = ['input', 'fc']): RunInfo {
  return {
    id,
    version: '1',
    name: id,
    n_samples: 10,
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
