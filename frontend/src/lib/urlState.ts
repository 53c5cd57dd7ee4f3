/**
 * The whole view lives in the query string, so a copied link reproduces it.
 *
 * Parameters we do not own (notably `token`) are kept untouched by `encodeState`.
 */
import { encodeSelection, tryDecodeSelection } from './selection';

export const TABS = ['gallery', 'probe', 'scatter', 'meaning', 'layers', 'compare', 'datasets'] as const;
export type Tab = (typeof TABS)[number];

export const HIST_AXES = ['quantile', 'score'] as const;
export type HistAxis = (typeof HIST_AXES)[number];

/** What the gallery, probe and scatter read components along: PCA, ICA, or the direction `dirA` → `dirB`. */
export const BASES = ['pca', 'ica', 'dir'] as const;
export type BasisChoice = (typeof BASES)[number];

/** The Data sets view ranks components by |SMD| (default), the KS statistic or the Wasserstein distance. */
export const SHIFT_SORTS = ['smd', 'ks', 'w1'] as const;
export type ShiftSort = (typeof SHIFT_SORTS)[number];

export const N_MIN = 4;
export const N_MAX = 16;

export interface ViewState {
  /** Run id; null = the first run. */
  run: string | null;
  /** Focused layer (probe, scatter, sample view); null = the run's first layer. */
  layer: string | null;
  /** Layers shown as gallery rows, in the run's order; empty = the focused layer only. */
  rows: string[];
  tab: Tab;
  /** Probed component (0-based). */
  pc: number;
  /** Slider position along the probed component, as a quantile in [0, 1]. */
  q: number;
  /** The probe histogram's x axis: quantiles (aligned with the slider) or scores. */
  axis: HistAxis;
  /** Samples per end in the gallery / probe strips. */
  n: number;
  /** Scatter axes (0-based components). */
  x: number;
  y: number;
  /** Colour-by: a column name, "none", or null = the label column when there is one. */
  color: string | null;
  /** Sample shown in the sample view. */
  sample: number | null;
  /** Lasso selection (sorted sample ids). */
  selection: number[];
  /** Layers view: draw links with |r| at or above this threshold (0..1). */
  threshold: number;
  /** Layers view: the highlighted component node. */
  node: ComponentRef | null;
  /** Layers view heatmap: layer A (rows) and layer B (columns); null = defaults. */
  heatA: string | null;
  heatB: string | null;
  /** Compare view: the two runs (null = the first two) and the opened CKA cell (layers). */
  runA: string | null;
  runB: string | null;
  cellA: string | null;
  cellB: string | null;
  /** Compare view: the highlighted matched pair, by its component of run A. */
  pair: number | null;
  /** Gallery, probe and scatter: PCA components, ICA components, or the direction. */
  basis: BasisChoice;
  /** The direction's two groups, as specs (`l:<label>` or `s:<selection>`, see lib/direction). */
  dirA: string | null;
  dirB: string | null;
  /** Data sets view: the reference run, the other run, the layer and the opened component. */
  dsA: string | null;
  dsB: string | null;
  dsLayer: string | null;
  dsPc: number | null;
  /** Data sets view: the measure the components are ranked by. */
  dsSort: ShiftSort;
}

/** A component of a layer, e.g. PC 3 of `fc`. */
export interface ComponentRef {
  layer: string;
  pc: number;
}

export const DEFAULT_STATE: ViewState = {
  run: null,
  layer: null,
  rows: [],
  tab: 'gallery',
  pc: 0,
  q: 0.5,
  axis: 'quantile',
  n: 8,
  x: 0,
  y: 1,
  color: null,
  sample: null,
  selection: [],
  threshold: 0.3,
  node: null,
  heatA: null,
  heatB: null,
  runA: null,
  runB: null,
  cellA: null,
  cellB: null,
  pair: null,
  basis: 'pca',
  dirA: null,
  dirB: null,
  dsA: null,
  dsB: null,
  dsLayer: null,
  dsPc: null,
  dsSort: 'smd',
};

/** The query parameters this module owns; every other parameter passes through. */
export const OWN_KEYS = ['run', 'layer', 'row', 'tab', 'pc', 'q', 'axis', 'n', 'x', 'y', 'color', 'sample', 'sel', 'thr', 'node', 'ha', 'hb', 'ra', 'rb', 'ca', 'cb', 'pair', 'basis', 'da', 'db', 'dsa', 'dsb', 'dsl', 'dspc', 'dss'];

function intParam(value: string | null, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === null || !/^-?\d+$/.test(value)) return fallback;
  const v = parseInt(value, 10);
  return v < min || v > max ? fallback : v;
}

export function clampN(n: number): number {
  return Math.min(N_MAX, Math.max(N_MIN, Math.round(n)));
}

export function roundQ(q: number): number {
  return Math.round(Math.min(1, Math.max(0, q)) * 1000) / 1000;
}

export function roundThreshold(t: number): number {
  return Math.round(Math.min(1, Math.max(0, t)) * 100) / 100;
}

/** `layer:pc` (the layer name may itself hold colons: the last one splits). */
export function encodeComponentRef(ref: ComponentRef): string {
  return `${ref.layer}:${ref.pc}`;
}

export function decodeComponentRef(text: string | null): ComponentRef | null {
  if (!text) return null;
  const i = text.lastIndexOf(':');
  if (i <= 0) return null;
  const pc = text.slice(i + 1);
  if (!/^\d+$/.test(pc)) return null;
  return { layer: text.slice(0, i), pc: parseInt(pc, 10) };
}

export function decodeState(search: string): ViewState {
  const p = new URLSearchParams(search);
  const tab = p.get('tab');
  const qText = p.get('q');
  const q = qText === null ? NaN : Number(qText);
  const sample = p.get('sample');
  const axis = p.get('axis');
  const thrText = p.get('thr');
  const thr = thrText === null || thrText === '' ? NaN : Number(thrText);
  const basis = p.get('basis');
  const dsPc = p.get('dspc');
  const dsSort = p.get('dss');
  return {
    run: p.get('run') || null,
    layer: p.get('layer') || null,
    rows: p.getAll('row').filter(Boolean),
    tab: (TABS as readonly string[]).includes(tab ?? '') ? (tab as Tab) : DEFAULT_STATE.tab,
    pc: intParam(p.get('pc'), DEFAULT_STATE.pc),
    q: Number.isFinite(q) ? roundQ(q) : DEFAULT_STATE.q,
    axis: (HIST_AXES as readonly string[]).includes(axis ?? '') ? (axis as HistAxis) : DEFAULT_STATE.axis,
    n: p.get('n') === null ? DEFAULT_STATE.n : clampN(intParam(p.get('n'), DEFAULT_STATE.n)),
    x: intParam(p.get('x'), DEFAULT_STATE.x),
    y: intParam(p.get('y'), DEFAULT_STATE.y),
    color: p.get('color') || null,
    sample: sample === null ? null : intParam(sample, -1) >= 0 ? intParam(sample, -1) : null,
    selection: tryDecodeSelection(p.get('sel')),
    threshold: Number.isFinite(thr) ? roundThreshold(thr) : DEFAULT_STATE.threshold,
    node: decodeComponentRef(p.get('node')),
    heatA: p.get('ha') || null,
    heatB: p.get('hb') || null,
    runA: p.get('ra') || null,
    runB: p.get('rb') || null,
    cellA: p.get('ca') || null,
    cellB: p.get('cb') || null,
    pair: p.get('pair') === null ? null : intParam(p.get('pair'), -1) >= 0 ? intParam(p.get('pair'), -1) : null,
    basis: (BASES as readonly string[]).includes(basis ?? '') ? (basis as BasisChoice) : DEFAULT_STATE.basis,
    dirA: p.get('da') || null,
    dirB: p.get('db') || null,
    dsA: p.get('dsa') || null,
    dsB: p.get('dsb') || null,
    dsLayer: p.get('dsl') || null,
    dsPc: dsPc === null ? null : intParam(dsPc, -1) >= 0 ? intParam(dsPc, -1) : null,
    dsSort: (SHIFT_SORTS as readonly string[]).includes(dsSort ?? '') ? (dsSort as ShiftSort) : DEFAULT_STATE.dsSort,
  };
}

/**
 * The query string for `state` (with a leading "?", or "" when empty). Defaults are left out;
 * parameters of `previousSearch` that this module does not own are kept, first and in order.
 */
export function encodeState(state: ViewState, previousSearch = ''): string {
  const prev = new URLSearchParams(previousSearch);
  const p = new URLSearchParams();
  for (const [k, v] of prev) if (!OWN_KEYS.includes(k)) p.append(k, v);
  const d = DEFAULT_STATE;
  if (state.run) p.set('run', state.run);
  if (state.layer) p.set('layer', state.layer);
  for (const row of state.rows) p.append('row', row);
  if (state.tab !== d.tab) p.set('tab', state.tab);
  if (state.pc !== d.pc) p.set('pc', String(state.pc));
  if (roundQ(state.q) !== d.q) p.set('q', String(roundQ(state.q)));
  if (state.axis !== d.axis) p.set('axis', state.axis);
  if (state.n !== d.n) p.set('n', String(state.n));
  if (state.x !== d.x) p.set('x', String(state.x));
  if (state.y !== d.y) p.set('y', String(state.y));
  if (state.color) p.set('color', state.color);
  if (state.sample !== null) p.set('sample', String(state.sample));
  if (state.selection.length) p.set('sel', encodeSelection(state.selection));
  if (roundThreshold(state.threshold) !== d.threshold) p.set('thr', String(roundThreshold(state.threshold)));
  if (state.node) p.set('node', encodeComponentRef(state.node));
  if (state.heatA) p.set('ha', state.heatA);
  if (state.heatB) p.set('hb', state.heatB);
  if (state.runA) p.set('ra', state.runA);
  if (state.runB) p.set('rb', state.runB);
  if (state.cellA) p.set('ca', state.cellA);
  if (state.cellB) p.set('cb', state.cellB);
  if (state.pair !== null) p.set('pair', String(state.pair));
  if (state.basis !== d.basis) p.set('basis', state.basis);
  if (state.dirA) p.set('da', state.dirA);
  if (state.dirB) p.set('db', state.dirB);
  if (state.dsA) p.set('dsa', state.dsA);
  if (state.dsB) p.set('dsb', state.dsB);
  if (state.dsLayer) p.set('dsl', state.dsLayer);
  if (state.dsPc !== null) p.set('dspc', String(state.dsPc));
  if (state.dsSort !== d.dsSort) p.set('dss', state.dsSort);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function sameState(a: ViewState, b: ViewState): boolean {
  return encodeState(a) === encodeState(b);
}
