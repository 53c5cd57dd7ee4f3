/**
 * The view state, one typed slice per view; each slice declares its query parameters in a table
 * (see `params.ts`). `urlState.ts` joins them into the one flat `ViewState` the URL holds.
 */
import { encodeSelection, tryDecodeSelection } from '../selection';
import type { FilterState } from './filter';
import type { NeighborsState } from './neighbors';
import { countParam, enumParam, indexParam, intParam, param, textParam, type Param } from './params';

export const TABS = ['insights', 'gallery', 'probe', 'scatter', 'meaning', 'layers', 'compare', 'datasets'] as const;
export type Tab = (typeof TABS)[number];

export const HIST_AXES = ['quantile', 'score'] as const;
export type HistAxis = (typeof HIST_AXES)[number];

/** What the gallery, probe and scatter read components along: PCA, ICA, or the direction `dirA` → `dirB`. */
export const BASES = ['pca', 'ica', 'dir'] as const;
export type BasisChoice = (typeof BASES)[number];

/**
 * The Data sets view ranks components by the variance-aware shift (default: W₁ over the layer's
 * total SD), |SMD|, the KS statistic or the Wasserstein distance in score units.
 */
export const SHIFT_SORTS = ['shift', 'smd', 'ks', 'w1'] as const;
export type ShiftSort = (typeof SHIFT_SORTS)[number];

export const N_MIN = 4;
export const N_MAX = 16;

export function clampN(n: number): number {
  return Math.min(N_MAX, Math.max(N_MIN, Math.round(n)));
}

export function roundQ(q: number): number {
  return Math.round(Math.min(1, Math.max(0, q)) * 1000) / 1000;
}

export function roundThreshold(t: number): number {
  return Math.round(Math.min(1, Math.max(0, t)) * 100) / 100;
}

/** A component of a layer, e.g. PC 3 of `fc`. */
export interface ComponentRef {
  layer: string;
  pc: number;
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

// ---- every view: the run, the focused layer, the tab, the opened sample ----------------------

export interface AppState {
  /** Run id; null = the first run. */
  run: string | null;
  /** Focused layer (probe, scatter, sample view); null = the run's first layer. */
  layer: string | null;
  /** Layers shown as gallery rows (and in the Layers view), in the run's order; empty = default. */
  rows: string[];
  tab: Tab;
  /** Sample shown in the sample view. */
  sample: number | null;
}

export const APP_DEFAULTS: AppState = { run: null, layer: null, rows: [], tab: 'gallery', sample: null };

export const APP_PARAMS: Param<AppState>[] = [
  textParam('run', 'run'),
  textParam('layer', 'layer'),
  param<AppState, 'rows'>(
    'row',
    'rows',
    (p) => p.getAll('row').filter(Boolean),
    (rows, p) => {
      for (const row of rows) p.append('row', row);
    },
  ),
  enumParam('tab', 'tab', TABS, APP_DEFAULTS.tab),
  indexParam('sample', 'sample'),
];

// ---- gallery, probe and scatter: the basis the components are read along ---------------------

export interface BasisState {
  /** Gallery, probe and scatter: PCA components, ICA components, or the direction. */
  basis: BasisChoice;
  /** The direction's two groups, as specs (`l:<label>` or `s:<selection>`, see lib/direction). */
  dirA: string | null;
  dirB: string | null;
}

export const BASIS_DEFAULTS: BasisState = { basis: 'pca', dirA: null, dirB: null };

export const BASIS_PARAMS: Param<BasisState>[] = [
  enumParam('basis', 'basis', BASES, BASIS_DEFAULTS.basis),
  textParam('da', 'dirA'),
  textParam('db', 'dirB'),
];

// ---- gallery (and probe strips) ---------------------------------------------------------------

export interface GalleryState {
  /** Samples per end in the gallery / probe strips. */
  n: number;
}

export const GALLERY_DEFAULTS: GalleryState = { n: 8 };

export const GALLERY_PARAMS: Param<GalleryState>[] = [
  param<GalleryState, 'n'>(
    'n',
    'n',
    (p) => (p.get('n') === null ? GALLERY_DEFAULTS.n : clampN(intParam(p.get('n'), GALLERY_DEFAULTS.n))),
    (n, p) => {
      if (n !== GALLERY_DEFAULTS.n) p.set('n', String(n));
    },
  ),
];

// ---- probe -------------------------------------------------------------------------------------

export interface ProbeState {
  /** Probed component (0-based). */
  pc: number;
  /** Slider position along the probed component, as a quantile in [0, 1]. */
  q: number;
  /** The probe histogram's x axis: quantiles (aligned with the slider) or scores. */
  axis: HistAxis;
}

export const PROBE_DEFAULTS: ProbeState = { pc: 0, q: 0.5, axis: 'quantile' };

export const PROBE_PARAMS: Param<ProbeState>[] = [
  countParam('pc', 'pc', PROBE_DEFAULTS.pc),
  param<ProbeState, 'q'>(
    'q',
    'q',
    (p) => {
      const text = p.get('q');
      const q = text === null ? NaN : Number(text);
      return Number.isFinite(q) ? roundQ(q) : PROBE_DEFAULTS.q;
    },
    (q, p) => {
      if (roundQ(q) !== PROBE_DEFAULTS.q) p.set('q', String(roundQ(q)));
    },
  ),
  enumParam('axis', 'axis', HIST_AXES, PROBE_DEFAULTS.axis),
];

// ---- scatter -----------------------------------------------------------------------------------

export interface ScatterState {
  /** Scatter axes (0-based components). */
  x: number;
  y: number;
  /** Colour-by: a column name, "none", or null = the label column when there is one. */
  color: string | null;
  /** Lasso selection (sorted sample ids). */
  selection: number[];
}

export const SCATTER_DEFAULTS: ScatterState = { x: 0, y: 1, color: null, selection: [] };

export const SCATTER_PARAMS: Param<ScatterState>[] = [
  countParam('x', 'x', SCATTER_DEFAULTS.x),
  countParam('y', 'y', SCATTER_DEFAULTS.y),
  textParam('color', 'color'),
  param<ScatterState, 'selection'>(
    'sel',
    'selection',
    (p) => tryDecodeSelection(p.get('sel')),
    (selection, p) => {
      if (selection.length) p.set('sel', encodeSelection(selection));
    },
  ),
];

// ---- layers ------------------------------------------------------------------------------------

export interface LayersState {
  /** Draw links with |r| at or above this threshold (0..1). */
  threshold: number;
  /** The highlighted component node. */
  node: ComponentRef | null;
  /** The heatmap: layer A (rows) and layer B (columns); null = defaults. */
  heatA: string | null;
  heatB: string | null;
}

export const LAYERS_DEFAULTS: LayersState = { threshold: 0.3, node: null, heatA: null, heatB: null };

export const LAYERS_PARAMS: Param<LayersState>[] = [
  param<LayersState, 'threshold'>(
    'thr',
    'threshold',
    (p) => {
      const text = p.get('thr');
      const thr = text === null || text === '' ? NaN : Number(text);
      return Number.isFinite(thr) ? roundThreshold(thr) : LAYERS_DEFAULTS.threshold;
    },
    (t, p) => {
      if (roundThreshold(t) !== LAYERS_DEFAULTS.threshold) p.set('thr', String(roundThreshold(t)));
    },
  ),
  param<LayersState, 'node'>(
    'node',
    'node',
    (p) => decodeComponentRef(p.get('node')),
    (node, p) => {
      if (node) p.set('node', encodeComponentRef(node));
    },
  ),
  textParam('ha', 'heatA'),
  textParam('hb', 'heatB'),
];

// ---- models (compare) --------------------------------------------------------------------------

export interface CompareState {
  /** The two runs (null = the first two) and the opened CKA cell (layers). */
  runA: string | null;
  runB: string | null;
  cellA: string | null;
  cellB: string | null;
  /** The highlighted matched pair, by its component of run A. */
  pair: number | null;
}

export const COMPARE_DEFAULTS: CompareState = { runA: null, runB: null, cellA: null, cellB: null, pair: null };

export const COMPARE_PARAMS: Param<CompareState>[] = [
  textParam('ra', 'runA'),
  textParam('rb', 'runB'),
  textParam('ca', 'cellA'),
  textParam('cb', 'cellB'),
  indexParam('pair', 'pair'),
];

// ---- data sets ---------------------------------------------------------------------------------

export interface DatasetsState {
  /** The reference run, the other run, the layer and the opened component. */
  dsA: string | null;
  dsB: string | null;
  dsLayer: string | null;
  dsPc: number | null;
  /** The measure the components are ranked by. */
  dsSort: ShiftSort;
}

export const DATASETS_DEFAULTS: DatasetsState = { dsA: null, dsB: null, dsLayer: null, dsPc: null, dsSort: 'shift' };

export const DATASETS_PARAMS: Param<DatasetsState>[] = [
  textParam('dsa', 'dsA'),
  textParam('dsb', 'dsB'),
  textParam('dsl', 'dsLayer'),
  indexParam('dspc', 'dsPc'),
  enumParam('dss', 'dsSort', SHIFT_SORTS, DATASETS_DEFAULTS.dsSort),
];

// ---- the slices by name --------------------------------------------------------------------------

/** Every view's slice, by name: a view declares the slices it reads (`useAppSlices` in context.ts). */
export interface Slices {
  app: AppState;
  basis: BasisState;
  gallery: GalleryState;
  probe: ProbeState;
  scatter: ScatterState;
  layers: LayersState;
  compare: CompareState;
  datasets: DatasetsState;
  filter: FilterState;
  neighbors: NeighborsState;
}

export type SliceName = keyof Slices;

type Intersect<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** The state of the named slices, e.g. `SliceState<'probe' | 'basis'>`. */
export type SliceState<K extends SliceName> = Intersect<Slices[K]>;
