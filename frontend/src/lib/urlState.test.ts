import { describe, expect, it } from 'vitest';
import { APP_PARAMS, BASIS_PARAMS, COMPARE_PARAMS, DATASETS_PARAMS, DEFAULT_STATE, FILTER_PARAMS, GALLERY_PARAMS, NEIGHBORS_PARAMS, LAYERS_PARAMS, OWN_KEYS, PROBE_PARAMS, SCATTER_PARAMS, decodeState, encodeState, type ViewState } from './urlState';

describe('URL state', () => {
  it('leaves defaults out', () => {
    expect(encodeState(DEFAULT_STATE)).toBe('');
    expect(decodeState('')).toEqual(DEFAULT_STATE);
  });

  it('round-trips a full state, selection included', () => {
    const state: ViewState = {
      run: 'fashion-cnn',
      layer: 'conv.2',
      rows: ['input', 'conv.2', 'fc'],
      tab: 'scatter',
      pc: 3,
      q: 0.37,
      axis: 'score',
      n: 12,
      x: 2,
      y: 0,
      color: 'split',
      sample: 417,
      selection: [0, 1, 2, 5, 9, 10, 4000],
      threshold: 0.45,
      node: { layer: 'conv.2', pc: 4 },
      heatA: 'input',
      heatB: 'fc',
      runA: 'fashion-cnn',
      runB: 'fashion-cnn-untrained',
      cellA: 'conv.2',
      cellB: 'fc',
      pair: 3,
      basis: 'dir',
      dirA: 'l:Coat',
      dirB: 's:0-2.2.3-1',
      dsA: 'fashion-cnn-test',
      dsB: 'fashion-cnn-inverted',
      dsLayer: 'fc',
      dsPc: 2,
      dsSort: 'w1',
      filter: { labels: ['Coat'], hide: ['Bag'], ranges: { brightness: [0.1, null] }, flags: { correct: false }, query: 'sleeve' },
      nbMetric: 'euclidean',
      nbSpace: 'scores',
      nbOther: 'fashion-cnn-untrained',
    };
    const search = encodeState(state);
    expect(search.startsWith('?')).toBe(true);
    expect(decodeState(search)).toEqual(state);
  });

  it('keeps parameters it does not own, such as the token', () => {
    const search = encodeState({ ...DEFAULT_STATE, tab: 'probe', pc: 1 }, '?token=s3cr3t-t0ken&tab=gallery&foo=1');
    const p = new URLSearchParams(search);
    expect(p.get('token')).toBe('s3cr3t-t0ken');
    expect(p.get('foo')).toBe('1');
    expect(p.get('tab')).toBe('probe');
    expect(search.indexOf('token')).toBeLessThan(search.indexOf('tab'));
    expect(encodeState(DEFAULT_STATE, '?token=abc12345')).toBe('?token=abc12345');
  });

  it('keeps the Data sets ranking measure, the variance-aware shift by default', () => {
    expect(encodeState({ ...DEFAULT_STATE, dsSort: 'ks' })).toBe('?dss=ks');
    expect(decodeState('?dss=ks').dsSort).toBe('ks');
    expect(decodeState('?dss=bogus').dsSort).toBe('shift');
    expect(encodeState({ ...DEFAULT_STATE, dsSort: 'shift' })).toBe('');
  });

  it('falls back to defaults on bad values', () => {
    const s = decodeState('?tab=nope&pc=-3&q=abc&n=999&x=1.5&sample=-1&sel=%%&axis=log');
    expect(s.axis).toBe('quantile');
    expect(s.tab).toBe('gallery');
    expect(s.pc).toBe(0);
    expect(s.q).toBe(0.5);
    expect(s.n).toBe(16);
    expect(s.x).toBe(0);
    expect(s.sample).toBeNull();
    expect(s.selection).toEqual([]);
  });

  it('clamps q to [0, 1] and rounds it', () => {
    expect(decodeState('?q=1.7').q).toBe(1);
    expect(decodeState('?q=0.123456').q).toBe(0.123);
    expect(decodeState('?q=0').q).toBe(0);
  });

  it('encodes layer names with odd characters', () => {
    const state = { ...DEFAULT_STATE, layer: 'blocks.0:1 & more', rows: ['a,b', 'c'] };
    expect(decodeState(encodeState(state))).toEqual(state);
  });

  it('round-trips the analysis views', () => {
    for (const tab of ['meaning', 'layers', 'compare'] as const) {
      const state: ViewState = { ...DEFAULT_STATE, tab, threshold: 0.05, node: { layer: 'a:b', pc: 0 }, pair: 0, runA: 'x', cellB: 'y' };
      expect(decodeState(encodeState(state))).toEqual(state);
    }
    expect(encodeState({ ...DEFAULT_STATE, threshold: 0.3 })).toBe('');
    expect(encodeState({ ...DEFAULT_STATE, node: { layer: 'fc', pc: 2 } })).toBe('?node=fc%3A2');
  });

  it('rejects bad analysis parameters', () => {
    const s = decodeState('?thr=abc&node=fc&pair=-2&ha=');
    expect(s.threshold).toBe(0.3);
    expect(s.node).toBeNull();
    expect(s.pair).toBeNull();
    expect(s.heatA).toBeNull();
    expect(decodeState('?thr=1.7').threshold).toBe(1);
    expect(decodeState('?thr=0.333').threshold).toBe(0.33);
    expect(decodeState('?node=fc:x').node).toBeNull();
    expect(decodeState('?node=:3').node).toBeNull();
  });

  it('gives every query parameter to exactly one view slice', () => {
    const slices = [APP_PARAMS, BASIS_PARAMS, GALLERY_PARAMS, PROBE_PARAMS, SCATTER_PARAMS, LAYERS_PARAMS, COMPARE_PARAMS, DATASETS_PARAMS, FILTER_PARAMS, NEIGHBORS_PARAMS];
    const keys = slices.flat().map((p) => p.key);
    expect([...keys].sort()).toEqual([...OWN_KEYS].sort());
    expect(new Set(keys).size).toBe(keys.length);
    const fields = slices.flat().map((p) => String(p.field));
    expect([...fields].sort()).toEqual(Object.keys(DEFAULT_STATE).sort());
  });

  it('parses a link written before the state was split per view to the same state, and writes it back unchanged', () => {
    const link =
      '?token=t0k&run=fashion-cnn&layer=conv.2&row=input&row=fc&tab=scatter&pc=3&q=0.37&axis=score&n=12&x=2&y=0&color=split&sample=417' +
      '&sel=0-2.2.3-1&thr=0.45&node=conv.2%3A4&ha=input&hb=fc&ra=a&rb=b&ca=conv.2&cb=fc&pair=3&basis=dir&da=l%3ACoat&db=l%3ABag' +
      '&dsa=t&dsb=s&dsl=fc&dspc=2&dss=w1';
    const state = decodeState(link);
    expect(state).toEqual({
      run: 'fashion-cnn', layer: 'conv.2', rows: ['input', 'fc'], tab: 'scatter', pc: 3, q: 0.37, axis: 'score', n: 12, x: 2, y: 0,
      color: 'split', sample: 417, selection: decodeState('?sel=0-2.2.3-1').selection, threshold: 0.45, node: { layer: 'conv.2', pc: 4 },
      heatA: 'input', heatB: 'fc', runA: 'a', runB: 'b', cellA: 'conv.2', cellB: 'fc', pair: 3, basis: 'dir', dirA: 'l:Coat', dirB: 'l:Bag',
      dsA: 't', dsB: 's', dsLayer: 'fc', dsPc: 2, dsSort: 'w1', filter: DEFAULT_STATE.filter, nbMetric: 'cosine', nbSpace: 'activations', nbOther: null,
    });
    expect(encodeState(state, link)).toBe(link);
  });

  it('keeps the sample filter in f and leaves it out when empty', () => {
    const state = decodeState('?f=' + encodeURIComponent('{"labels":["Coat"],"flags":{"correct":false}}'));
    expect(state.filter.labels).toEqual(['Coat']);
    expect(state.filter.flags).toEqual({ correct: false });
    expect(decodeState(encodeState(state)).filter).toEqual(state.filter);
    expect(encodeState({ ...state, filter: DEFAULT_STATE.filter })).toBe('');
  });
});
