/** Scatter helpers: axis names, point sizes, ticks. */
import type { ColumnInfo } from '../../api';
import { niceTicks } from '../../lib/colors';
import { formatPercent, formatTick, pcName, tickStep } from '../../lib/format';
import type { LinearScale } from '../../lib/scale';
import type { ScatterBasis } from '../../lib/scatterPoints';

/** An axis's name and (PCA) variance share: "PC 2 · 14.1%" or "IC 2". */
export function axisText(basis: ScatterBasis, i: number, ratios: number[]): string {
  return basis === 'ica' ? `IC ${i + 1}` : `${pcName(i)} · ${formatPercent(ratios[i] ?? NaN)}`;
}
export function axisName(basis: ScatterBasis, i: number): string {
  return basis === 'ica' ? `IC ${i + 1}` : pcName(i);
}

/** A column and its values, the points are coloured by. */
export interface Coloring {
  column: ColumnInfo | null;
  values: Int32Array | Float32Array | null;
}

export function pointSizeFor(n: number): number {
  if (n <= 2_000) return 6;
  if (n <= 20_000) return 4;
  if (n <= 200_000) return 2.5;
  return 1.5;
}

export interface Tick {
  pos: number;
  text: string;
}

export function ticksOf(scale: LinearScale, length: number, horizontal: boolean): Tick[] {
  const [a, b] = scale.domain();
  const count = Math.max(2, Math.floor(length / (horizontal ? 90 : 60)));
  const values = niceTicks(Math.min(a, b), Math.max(a, b), count);
  const step = tickStep(values);
  return values.map((v) => ({ pos: scale(v), text: formatTick(v, step) }));
}
