import { describe, expect, it } from 'vitest';
import type { RunInfo } from '../api';
import { apiUrl, detailText } from '../api';
import { MISSING_COLOR, categoricalColor } from './colors';
import { formatPercent, formatScore, formatTick, tickStep } from './format';
import { colorColumn, cumulative, galleryRows, labelColor, labelOrder } from './runInfo';
import { linearScale, toNdc } from './scale';

const run: RunInfo = {
  id: 'r',
  name: 'r',
  n_samples: 10,
  per_token: false,
  version: 'v1',
  model_class: 'Net',
  model_fingerprint: null,
  data_fingerprint: null,
  rendering_kind: 'image/png',
  labels: { present: true, names: ['T-shirt', 'Trouser', 'Pullover'], values: [0, 1, 2] },
  columns: [
    { name: 'label', kind: 'categorical', categories: ['T-shirt', 'Trouser', 'Pullover'] },
    { name: 'brightness', kind: 'numeric', categories: null },
  ],
  layers: [
    { name: 'input', dim: 784, n_components: 3, explained_variance_ratio: [0.5, 0.2, 0.1], total_variance: 1, pca_method: 'exact' },
    { name: 'fc', dim: 32, n_components: 3, explained_variance_ratio: [0.6, 0.3, 0.05], total_variance: 1, pca_method: 'exact' },
  ],
};

describe('run helpers', () => {
  it('orders labels as the label column codes them', () => {
    expect(labelOrder(run)).toEqual(['T-shirt', 'Trouser', 'Pullover']);
    expect(labelOrder({ ...run, columns: [] })).toEqual(['T-shirt', 'Trouser', 'Pullover']);
    expect(labelOrder({ ...run, columns: [], labels: { present: true, names: null, values: ['cat', 'dog'] } })).toEqual(['cat', 'dog']);
    expect(labelColor(labelOrder(run), 'Trouser')).toBe(categoricalColor(1));
    expect(labelColor(labelOrder(run), 'unknown')).toBe(MISSING_COLOR);
  });

  it('picks the colour column', () => {
    expect(colorColumn(run, null)?.name).toBe('label');
    expect(colorColumn(run, 'brightness')?.kind).toBe('numeric');
    expect(colorColumn(run, 'nope')?.name).toBe('label');
    expect(colorColumn(run, 'none')).toBeNull();
  });

  it('keeps gallery rows in the run order', () => {
    expect(galleryRows(run, ['fc', 'input'], null)).toEqual(['input', 'fc']);
    expect(galleryRows(run, [], 'fc')).toEqual(['fc']);
    expect(galleryRows(run, ['gone'], null)).toEqual(['input']);
    expect(cumulative([0.5, 0.2, 0.1]).map((v) => +v.toFixed(6))).toEqual([0.5, 0.7, 0.8]);
  });
});

describe('formatting', () => {
  it('formats percentages and scores', () => {
    expect(formatPercent(0.156)).toBe('15.6%');
    expect(formatPercent(NaN)).toBe('–');
    expect(formatScore(1.2345)).toBe('1.23');
    expect(formatScore(-12.345)).toBe('-12.3');
    expect(formatScore(123456)).toBe('1.23e+5');
    expect(formatScore(0.000924)).toBe('0.000924');
    expect(formatScore(0.19)).toBe('0.190');
    expect(formatScore(-3.2e-5)).toBe('-3.20e-5');
    expect(formatScore(456.7)).toBe('457');
    expect(formatScore(0)).toBe('0');
  });
});

describe('tick labels', () => {
  it('uses the decimals the step needs', () => {
    expect(formatTick(0.05, 0.05)).toBe('0.05');
    expect(formatTick(-0.1, 0.05)).toBe('-0.10');
    expect(formatTick(0, 0.05)).toBe('0');
    expect(formatTick(250, 50)).toBe('250');
    expect(formatTick(1.5, 0.5)).toBe('1.5');
    expect(tickStep([0, 0.2, 0.4])).toBeCloseTo(0.2);
    expect(tickStep([1])).toBe(0);
  });
});

describe('scales', () => {
  it('supports the D3 domain/range API and inverts', () => {
    const s = linearScale([0, 10], [0, 100]);
    expect(s(5)).toBe(50);
    expect(s.invert(25)).toBe(2.5);
    s.domain([-1, 1]).range([0, 200]);
    expect(s.domain()).toEqual([-1, 1]);
    expect(s(0)).toBe(100);
    expect(s.copy()(1)).toBe(200);
  });

  it('maps values to padded normalized device coordinates', () => {
    const { ndc, domain } = toNdc([0, 5, 10], 0, 10, 0.05);
    expect(domain).toEqual([-0.5, 10.5]);
    expect(ndc[1]).toBeCloseTo(0);
    expect(ndc[0]).toBeCloseTo(-1 + 0.5 * (2 / 11));
    const s = linearScale(domain, [-1, 1]);
    expect(s(10)).toBeCloseTo(ndc[2]);
  });
});

describe('API client helpers', () => {
  it("reads FastAPI's detail, string or validation list", () => {
    expect(detailText({ detail: 'run "x" not found' }, 'fb')).toBe('run "x" not found');
    expect(detailText({ detail: [{ loc: ['query', 'q'], msg: 'must be <= 1' }] }, 'fb')).toBe('q: must be <= 1');
    expect(detailText(null, 'fallback')).toBe('fallback');
  });

  it('builds API URLs with encoded path parts and parameters', () => {
    const url = apiUrl('runs/a%20b/layers', { n: 8, skip: undefined });
    expect(url).toBe('http://localhost/api/runs/a%20b/layers?n=8');
  });
});
