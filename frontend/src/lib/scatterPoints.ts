/** Scatter points: positions in WebGL's normalised coordinates and a colour value per point. */
import type { ScoreMatrix } from '../api';
import { extent, matrixColumn } from './binary';
import { categoricalColor, MISSING_COLOR, numericScale, rampColors } from './colors';
import { toNdc } from './scale';

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

/** The components the scatter asks the server for: the two shown (one when both axes show it). */
export function shownComponents(x: number, y: number): number[] {
  return x === y ? [x] : [x, y];
}

/** The column of component `c` in `scores` (fetched for some components only); -1 when absent. */
export function columnOf(scores: ScoreMatrix, c: number): number {
  return scores.components.indexOf(c);
}

/** Columns `x` and `y` of `scores` as points, coloured by `coloring` when it has one value per point. */
export function scatterPoints(scores: ScoreMatrix, x: number, y: number, coloring: ScatterColoring | null): ScatterPoints {
  const xs = matrixColumn(scores, x);
  const ys = matrixColumn(scores, y);
  const [x0, x1] = extent(xs);
  const [y0, y1] = extent(ys);
  const nx = toNdc(xs, x0, x1);
  const ny = toNdc(ys, y0, y1);
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
