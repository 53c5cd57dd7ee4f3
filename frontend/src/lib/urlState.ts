/**
 * The whole view lives in the query string, so a copied link reproduces it.
 *
 * Each view owns a typed slice of the state and the query parameters that hold it
 * (`state/slices.ts`); `ViewState` is their union, flat, as the URL is. Parameters we do not
 * own (notably `token`) are kept untouched by `encodeState`.
 */
import { FILTER_DEFAULTS, FILTER_PARAMS, type FilterState } from './state/filter';
import { NEIGHBORS_DEFAULTS, NEIGHBORS_PARAMS, type NeighborsState } from './state/neighbors';
import type { Param } from './state/params';
import {
  APP_DEFAULTS,
  APP_PARAMS,
  BASIS_DEFAULTS,
  BASIS_PARAMS,
  COMPARE_DEFAULTS,
  COMPARE_PARAMS,
  DATASETS_DEFAULTS,
  DATASETS_PARAMS,
  GALLERY_DEFAULTS,
  GALLERY_PARAMS,
  LAYERS_DEFAULTS,
  LAYERS_PARAMS,
  PROBE_DEFAULTS,
  PROBE_PARAMS,
  SCATTER_DEFAULTS,
  SCATTER_PARAMS,
  type AppState,
  type BasisState,
  type CompareState,
  type DatasetsState,
  type GalleryState,
  type LayersState,
  type ProbeState,
  type ScatterState,
} from './state/slices';

export * from './state/filter';
export * from './state/neighbors';
export * from './state/slices';

export type ViewState = AppState & BasisState & GalleryState & ProbeState & ScatterState & LayersState & CompareState & DatasetsState & FilterState & NeighborsState;

export const DEFAULT_STATE: ViewState = {
  ...APP_DEFAULTS,
  ...GALLERY_DEFAULTS,
  ...PROBE_DEFAULTS,
  ...SCATTER_DEFAULTS,
  ...LAYERS_DEFAULTS,
  ...COMPARE_DEFAULTS,
  ...BASIS_DEFAULTS,
  ...DATASETS_DEFAULTS,
  ...FILTER_DEFAULTS,
  ...NEIGHBORS_DEFAULTS,
};

/** The query parameters this module owns, in the order `encodeState` writes them; every other parameter passes through. */
export const OWN_KEYS = ['run', 'layer', 'row', 'tab', 'pc', 'q', 'axis', 'n', 'x', 'y', 'color', 'sample', 'sel', 'thr', 'node', 'ha', 'hb', 'ra', 'rb', 'ca', 'cb', 'pair', 'basis', 'da', 'db', 'dsa', 'dsb', 'dsl', 'dspc', 'dss', 'f', 'nm', 'ns', 'nr'];

/** Every slice's parameters, in `OWN_KEYS` order (so links keep their parameter order). */
export const PARAMS: Param<ViewState>[] = (
  [APP_PARAMS, BASIS_PARAMS, GALLERY_PARAMS, PROBE_PARAMS, SCATTER_PARAMS, LAYERS_PARAMS, COMPARE_PARAMS, DATASETS_PARAMS, FILTER_PARAMS, NEIGHBORS_PARAMS] as Param<ViewState>[][]
)
  .flat()
  .sort((a, b) => OWN_KEYS.indexOf(a.key) - OWN_KEYS.indexOf(b.key));

export function decodeState(search: string): ViewState {
  const p = new URLSearchParams(search);
  const state: Record<string, unknown> = {};
  for (const param of PARAMS) state[param.field] = param.decode(p);
  return state as unknown as ViewState;
}

/**
 * The query string for `state` (with a leading "?", or "" when empty). Defaults are left out;
 * parameters of `previousSearch` that this module does not own are kept, first and in order.
 */
export function encodeState(state: ViewState, previousSearch = ''): string {
  const prev = new URLSearchParams(previousSearch);
  const p = new URLSearchParams();
  for (const [k, v] of prev) if (!OWN_KEYS.includes(k)) p.append(k, v);
  for (const param of PARAMS) param.encode(state[param.field], p);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function sameState(a: ViewState, b: ViewState): boolean {
  return encodeState(a) === encodeState(b);
}
