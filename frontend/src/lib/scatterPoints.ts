/** Scatter points: positions in WebGL's normalised coordinates and a colour value per point. */
import type { ScatterScores } from '../api';
import { codesToNdc, extent } from './binary';
import { categoricalColor, MISSING_COLOR, numericScale, rampColors } from './colors';

export interface ScatterColoring {
  column: { kind: 'categorical' | 'numeric'; categories: string[] | null } | null;
  values: Int32Array | Float32Array | null;
}

export interface ScatterPoints {
  x: Float32Array;
  y: Float32Array;
  /** Category index (missing: the last colour) or the value normalised to [0, 1]. */
  z: Float32Array;
  xDomain: [number, number];
  yDomain: [number, number];
  pointColor: string[];
  zType: 'categorical' | 'continuous';
  n: number;
}

/** The scatter shows two axes of a basis: PCA or ICA (a direction is one axis: probe it). */
export type ScatterBasis = 'pca' | 'ica';

/** The basis the scatter shows for the app's `basis` (a link's `basis=`): ICA when it names ICA, else PCA. */
export function scatterBasis(basis: string | undefined): ScatterBasis {
  return basis === 'ica' ? 'ica' : 'pca';
}

/** The components the scatter asks the server for: the two shown (one when both axes show it). */
export function shownComponents(x: number, y: number): number[] {
  return x === y ? [x] : [x, y];
}

/** The column of component `c` in `scores` (fetched for some components only); -1 when absent. */
export function columnOf(scores: ScatterScores, c: number): number {
  return scores.components.indexOf(c);
}

/** Columns `x` and `y` of `scores` as points, coloured by `coloring` when it has one value per point. */
export function scatterPoints(scores: ScatterScores, x: number, y: number, coloring: ScatterColoring | null): ScatterPoints {
  const nx = codesToNdc(scores, x);
  const ny = codesToNdc(scores, y);
  const n = scores.rows;
  const z = new Float32Array(n);
  let pointColor: string[] = ['#4f6bed'];
  let zType: 'categorical' | 'continuous' = 'categorical';
  const values = coloring?.values;
  const col = coloring?.column;
  if (values && col && values.length === n) {
    if (col.kind === 'categorical') {
      const m = col.categories?.length ?? 0;
      for (let i = 0; i < n; i += 1) z[i] = values[i] >= 0 && values[i] < m ? values[i] : m;
      pointColor = [...Array.from({ length: m }, (_, i) => categoricalColor(i)), MISSING_COLOR];
    } else {
      const [lo, hi] = extent(values);
      const s = numericScale(lo, hi);
      for (let i = 0; i < n; i += 1) {
        const t = s.normalize(values[i]);
        z[i] = Number.isNaN(t) ? 0 : t;
      }
      pointColor = rampColors(64);
      zType = 'continuous';
    }
  }
  return { x: nx.ndc, y: ny.ndc, z, xDomain: nx.domain, yDomain: ny.domain, pointColor, zType, n };
}

const rowsOf = new WeakMap<ScatterPoints, number[][]>();

/**
 * The points as regl-scatterplot keeps them, `[x, y, z]` a point, made once per points (the
 * first draw and the one that swaps the spatial index in share them). regl-scatterplot would
 * make them from typed arrays itself with `Array.from({ length }, callback)`, 1.5-3x slower than
 * this loop at a million points.
 */
export function pointRows(p: ScatterPoints): number[][] {
  let rows = rowsOf.get(p);
  if (!rows) {
    rows = new Array<number[]>(p.n);
    const { x, y, z } = p;
    for (let i = 0; i < p.n; i += 1) rows[i] = [x[i], y[i], z[i]];
    rowsOf.set(p, rows);
  }
  return rows;
}
