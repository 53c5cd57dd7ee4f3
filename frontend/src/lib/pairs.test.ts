import { describe, expect, it } from 'vitest';
import { runInfo } from '../test/app';
import { compatiblePair, datasetPairProblem, modelPairProblem, replacedPairNotice } from './pairs';

// two models over one data set (a, b), a's model over other data (shifted), a model-free run
const a = runInfo('a', { data_fingerprint: 'd1', model_fingerprint: 'm1' });
const b = runInfo('b', { data_fingerprint: 'd1', model_fingerprint: 'm2' });
const shifted = runInfo('shifted', { data_fingerprint: 'd2', model_fingerprint: 'm1' });
const texts = runInfo('texts', { data_fingerprint: 'd3', model_fingerprint: null, n_samples: 40 });
const runs = [a, b, shifted, texts];

describe('pairs the server accepts', () => {
  it('says in plain words why two runs cannot be compared as models', () => {
    expect(modelPairProblem(a, b)).toBeNull();
    expect(modelPairProblem(a, shifted)).toBe('other samples or another order');
    expect(modelPairProblem(a, texts)).toBe('other samples (40 vs 100)');
    expect(modelPairProblem(a, { ...b, data_fingerprint: null })).toBe('other samples or another order');
  });

  it('says why two runs cannot be compared as data sets', () => {
    expect(datasetPairProblem(a, shifted)).toBeNull();
    expect(datasetPairProblem(a, b)).toBe('another model');
    // two model-free runs are one "model" (the server agrees)
    expect(datasetPairProblem(texts, { ...texts, id: 'other' })).toBeNull();
  });

  it('keeps an accepted asked pair and otherwise finds one', () => {
    expect(compatiblePair(runs, 'b', 'a', modelPairProblem)).toEqual(['b', 'a']);
    expect(compatiblePair(runs, 'a', 'shifted', modelPairProblem)).toEqual(['a', 'b']);
    expect(compatiblePair(runs, 'texts', null, modelPairProblem)).toEqual(['a', 'b']); // texts has no partner
    expect(compatiblePair(runs, null, null, datasetPairProblem)).toEqual(['a', 'shifted']);
    expect(compatiblePair([a, texts], null, null, datasetPairProblem)).toBeNull();
  });
});

describe('a replaced pair', () => {
  it('is explained in plain words', () => {
    expect(replacedPairNotice(runs, 'a', 'texts', ['a', 'b'], modelPairProblem)).toBe('“a” and “texts” cannot be compared here: other samples (40 vs 100).');
    expect(replacedPairNotice(runs, 'a', 'b', ['a', 'b'], modelPairProblem)).toBeNull();
    expect(replacedPairNotice(runs, 'a', null, ['a', 'b'], modelPairProblem)).toBeNull();
  });
});
