/** Colour scales: a categorical palette and a continuous (numeric) ramp. */

/** Observable 10 followed by lighter companions: distinct on light and dark backgrounds. */
export const CATEGORICAL = [
  '#4269d0', '#efb118', '#ff725c', '#6cc5b0', '#3ca951',
  '#ff8ab7', '#a463f2', '#97bbf5', '#9c6b4e', '#9498a0',
  '#1f4e9e', '#b9820b', '#d1422f', '#2f9c86', '#23772f',
  '#d45d8e', '#7a3fc4', '#5f8fe0', '#744c35', '#61646b',
];

export const MISSING_COLOR = '#a0a4ab';

export function categoricalColor(index: number): string {
  if (!Number.isInteger(index) || index < 0) return MISSING_COLOR;
  return CATEGORICAL[index % CATEGORICAL.length];
}

/** Viridis, sampled at 9 stops. */
const RAMP = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];

export function hexToRgb(hex: string): [number, number, number] {
  const h = hex.replace('#', '');
  const full = h.length === 3 ? h.split('').map((c) => c + c).join('') : h;
  if (!/^[0-9a-fA-F]{6}$/.test(full)) throw new RangeError(`not a hex colour: ${JSON.stringify(hex)}`);
  return [0, 2, 4].map((i) => parseInt(full.slice(i, i + 2), 16)) as [number, number, number];
}

export function rgbToHex([r, g, b]: readonly number[]): string {
  const c = (v: number) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, '0');
  return `#${c(r)}${c(g)}${c(b)}`;
}

/** The ramp's colour at t in [0, 1] (clamped; NaN gives the missing colour). */
export function rampColor(t: number): string {
  if (Number.isNaN(t)) return MISSING_COLOR;
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = hexToRgb(RAMP[i]);
  const b = hexToRgb(RAMP[i + 1]);
  return rgbToHex([a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f]);
}

/** `steps` colours along the ramp, for a WebGL colour map. */
export function rampColors(steps = 256): string[] {
  return Array.from({ length: steps }, (_, i) => rampColor(steps === 1 ? 0 : i / (steps - 1)));
}

export interface NumericScale {
  min: number;
  max: number;
  /** Value -> [0, 1] (NaN stays NaN). */
  normalize(v: number): number;
  color(v: number): string;
}

/** A linear scale over [min, max]; a constant column maps everything to 0.5. */
export function numericScale(min: number, max: number): NumericScale {
  const span = max - min;
  const normalize = (v: number) => {
    if (!Number.isFinite(v)) return NaN;
    if (!(span > 0)) return 0.5;
    return Math.min(1, Math.max(0, (v - min) / span));
  };
  return { min, max, normalize, color: (v) => rampColor(normalize(v)) };
}

/** `count` "nice" tick values covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max < min) [min, max] = [max, min];
  if (max === min) return [min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm >= Math.SQRT2 * 5 ? 10 : norm >= Math.sqrt(10) ? 5 : norm >= Math.SQRT2 ? 2 : 1) * mag;
  const first = Math.ceil(min / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = first; v <= max + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
  return ticks;
}
