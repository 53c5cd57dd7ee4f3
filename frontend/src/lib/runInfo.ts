/** Pure helpers over a run's description (`/api/runs`). */
import type { ColumnInfo, LayerInfo, RunInfo } from '../api';
import type { ViewState } from './urlState';
import { categoricalColor, MISSING_COLOR } from './colors';

export const LABEL_COLUMN = 'label';

/** Display names of the run's labels, in the order of their codes (the colour order). */
export function labelOrder(run: RunInfo): string[] {
  const column = run.columns.find((c) => c.name === LABEL_COLUMN && c.kind === 'categorical');
  if (column?.categories) return column.categories.map(String);
  if (!run.labels.present) return [];
  const { names, values } = run.labels;
  return values.map((v) =>
    names && typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < names.length ? names[v] : String(v),
  );
}

/** A label's colour: its position in `order` on the categorical palette. */
export function labelColor(order: readonly string[], label: string | null | undefined): string {
  if (label === null || label === undefined) return MISSING_COLOR;
  const i = order.indexOf(label);
  return i < 0 ? MISSING_COLOR : categoricalColor(i);
}

/** The raw-input pseudo-layer's name (PCA in data space, nothing the model learned). */
export const INPUT_LAYER = 'input';

/** The asked layer; else the first learned one (not the raw input), else the input. */
export function findLayer(run: RunInfo, name: string | null): LayerInfo | null {
  if (!run.layers.length) return null;
  return run.layers.find((l) => l.name === name) ?? run.layers.find((l) => l.name !== INPUT_LAYER) ?? run.layers[0];
}

/** The colour-by column a view uses: the asked one, else the label column, else none. */
export function colorColumn(run: RunInfo, asked: string | null): ColumnInfo | null {
  if (asked === 'none') return null;
  if (asked) {
    const hit = run.columns.find((c) => c.name === asked);
    if (hit) return hit;
  }
  return run.columns.find((c) => c.name === LABEL_COLUMN) ?? null;
}

/** Cumulative sums of the explained-variance ratios. */
export function cumulative(ratios: readonly number[]): number[] {
  let acc = 0;
  return ratios.map((r) => (acc += r));
}

/** Gallery rows: the asked layers that exist, in the run's order; else the focused layer. */
export function galleryRows(run: RunInfo, rows: readonly string[], focused: string | null): string[] {
  const names = run.layers.map((l) => l.name);
  const picked = names.filter((n) => rows.includes(n));
  if (picked.length) return picked;
  const f = findLayer(run, focused);
  return f ? [f.name] : [];
}

/**
 * What switching from the current view to run `next` changes. The layer, gallery rows, component
 * and axes stay where `next` has them (same layer name, component within its count) and fall back
 * to its defaults where not; colour stays where `next` has the column. Sample, selection and a
 * direction belong to the old run (its sample ids or labels): they go, and the basis returns to PCA.
 */
export function runChange(next: RunInfo, state: Pick<ViewState, 'layer' | 'rows' | 'pc' | 'x' | 'y' | 'color'>): Partial<ViewState> {
  const layer = next.layers.find((l) => l.name === state.layer) ?? null;
  const k = layer?.n_components ?? 0;
  const within = (c: number, fallback: number) => (c < k ? c : Math.min(fallback, Math.max(0, k - 1)));
  const names = next.layers.map((l) => l.name);
  const color = state.color === null || state.color === 'none' || next.columns.some((c) => c.name === state.color) ? state.color : null;
  return {
    run: next.id,
    layer: layer?.name ?? null,
    rows: state.rows.filter((r) => names.includes(r)),
    pc: layer ? within(state.pc, 0) : 0,
    q: 0.5,
    x: layer ? within(state.x, 0) : 0,
    y: layer ? within(state.y, 1) : 1,
    color,
    sample: null,
    selection: [],
    basis: 'pca',
    dirA: null,
    dirB: null,
  };
}
