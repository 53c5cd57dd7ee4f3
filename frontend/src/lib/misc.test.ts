import { describe, expect, it } from 'vitest';
import type { RunInfo } from '../api';
import { apiUrl, detailText } from '../api';
import { MISSING_COLOR, categoricalColor } from './colors';
import { formatPercent, formatScore, formatTick, tickStep } from './format';
import { colorColumn, cumulative, findLayer, galleryRows, labelColor, labelOrder, runChange } from './runInfo';
import { linearScale, paddedDomain } from './scale';

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
    { name: 'label', kind: 'categorical', categories: ['T-shirt', 'Trouser', 'Pullover'], source: 'label' },
    { name: 'brightness', kind: 'numeric', categories: null, source: 'input_statistic' },
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
    // nothing asked: the first learned layer, not the raw input
    expect(galleryRows(run, ['gone'], null)).toEqual(['fc']);
    expect(findLayer(run, null)?.name).toBe('fc');
    expect(findLayer(run, 'input')?.name).toBe('input');
    expect(findLayer({ ...run, layers: run.layers.slice(0, 1) }, null)?.name).toBe('input');
    expect(cumulative([0.5, 0.2, 0.1]).map((v) => +v.toFixed(6))).toEqual([0.5, 0.7, 0.8]);
  });
});

describe('switching runs', () => {
  const other: RunInfo = {
    ...run,
    id: 'o',
    columns: run.columns.slice(0, 1),
    layers: [run.layers[0], { ...run.layers[1], n_components: 2, explained_variance_ratio: [0.6, 0.3] }, { ...run.layers[1], name: 'head' }],
  };
  const here = { layer: 'fc', rows: ['input', 'fc'], pc: 1, x: 1, y: 2, color: 'brightness' };

  it('keeps the layer, rows and component where the other run has them', () => {
    const next = runChange(other, here);
    expect(next).toMatchObject({ run: 'o', layer: 'fc', rows: ['input', 'fc'], pc: 1, x: 1, sample: null, selection: [], basis: 'pca' });
    expect(next.y).toBe(1); // fc has 2 components there: axis 2 falls back to the default
    expect(next.color).toBeNull(); // no brightness column there
  });

  it('falls back to the defaults where it does not', () => {
    expect(runChange(other, { ...here, layer: 'conv', rows: ['conv'], pc: 7 })).toMatchObject({ layer: null, rows: [], pc: 0, x: 0, y: 1 });
    expect(runChange(other, { ...here, pc: 5 }).pc).toBe(0);
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

  it('pads an extent on each side, and gives an empty one a span', () => {
    expect(paddedDomain(0, 10, 0.05)).toEqual([-0.5, 10.5]);
    expect(paddedDomain(4, 4, 0.05)).toEqual([4 - 0.2, 4 + 4 * 1.05]);
    expect(paddedDomain(0, 0, 0.5)).toEqual([-0.5, 1.5]);
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

  it('keeps API URLs under the path prefix the page is served at', () => {
    const hub = 'https://hub.example.org/user/alice/proxy/8031/?token=abc&tab=probe#x';
    expect(apiUrl('runs', { n: 2 }, hub)).toBe('https://hub.example.org/user/alice/proxy/8031/api/runs?n=2');
    expect(apiUrl('runs/r/samples/3/render', undefined, 'http://127.0.0.1:9000/tools/explorer/')).toBe(
      'http://127.0.0.1:9000/tools/explorer/api/runs/r/samples/3/render',
    );
    expect(apiUrl('runs', undefined, 'https://8031-abc.prod.colab.dev/')).toBe('https://8031-abc.prod.colab.dev/api/runs');
  });
});
