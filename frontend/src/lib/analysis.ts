/**
 * Pure helpers of the analysis views: what components mean (associations with labels and
 * metadata), how components of two layers or two models relate (correlation, CKA, matching).
 */
import type { AssociationColumn, MatchedPair, RunInfo } from '../api';
import { hexToRgb, MISSING_COLOR, rampColor, rgbToHex } from './colors';
import { formatPercent, pcName } from './format';

// ---- colour scales ----------------------------------------------------------------------------

/** Ends of the diverging r scale: blue for negative, red for positive (ColorBrewer RdBu). */
export const NEGATIVE_COLOR = '#2166ac';
export const POSITIVE_COLOR = '#b2182b';
const NEGATIVE_MID = '#92c5de';
const POSITIVE_MID = '#f4a582';

function mix(a: string, b: string, t: number): string {
  const x = hexToRgb(a);
  const y = hexToRgb(b);
  return rgbToHex([x[0] + (y[0] - x[0]) * t, x[1] + (y[1] - x[1]) * t, x[2] + (y[2] - x[2]) * t]);
}

/**
 * A correlation in [-1, 1] on a diverging scale: `mid` (the panel background, so that r = 0
 * disappears in either theme) to red (+1) or blue (-1); on a dark `mid` the ends are the light
 * shades, so stronger always stands out more. null / NaN gives the missing colour.
 */
export function divergingColor(r: number | null, mid = '#ffffff'): string {
  if (r === null || !Number.isFinite(r)) return MISSING_COLOR;
  const t = Math.min(1, Math.abs(r));
  let [first, last] = r >= 0 ? [POSITIVE_MID, POSITIVE_COLOR] : [NEGATIVE_MID, NEGATIVE_COLOR];
  // on a dark background stronger must read lighter: go through the deep colour to the light one
  if (luminance(mid) < 0.18) [first, last] = [last, first];
  return t < 0.5 ? mix(mid, first, t / 0.5) : mix(first, last, (t - 0.5) / 0.5);
}

/** CKA in [0, 1] on the viridis ramp (null / NaN: the missing colour). */
export function ckaColor(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return MISSING_COLOR;
  return rampColor(v);
}

/** Relative luminance (WCAG) of a hex colour. */
export function luminance(hex: string): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const [r, g, b] = hexToRgb(hex);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** Black or white text, whichever reads better on `background`. */
export function textOn(background: string): '#000000' | '#ffffff' {
  // the luminance where contrast with black equals contrast with white
  return luminance(background) > 0.179 ? '#000000' : '#ffffff';
}

// ---- links between components -----------------------------------------------------------------

export interface Link {
  /** Component of the left layer (row of the r matrix). */
  a: number;
  /** Component of the right layer (column). */
  b: number;
  r: number;
}

/** Links with |r| >= threshold, weakest first (so the strongest are drawn on top). */
export function filterLinks(r: readonly (readonly (number | null)[])[], threshold: number): Link[] {
  const links: Link[] = [];
  r.forEach((row, a) =>
    row.forEach((v, b) => {
      if (v !== null && Number.isFinite(v) && Math.abs(v) >= threshold) links.push({ a, b, r: v });
    }),
  );
  return links.sort((x, y) => Math.abs(x.r) - Math.abs(y.r) || x.a - y.a || x.b - y.b);
}

/** Stroke width of a link: 1 px at the threshold up to `max` px at |r| = 1. */
export function linkWidth(r: number, threshold: number, max = 9): number {
  const a = Math.abs(r);
  if (!Number.isFinite(a)) return 0;
  const span = 1 - threshold;
  const t = span > 1e-9 ? Math.min(1, Math.max(0, (a - threshold) / span)) : 1;
  return 1 + t * (max - 1);
}

/** Node radius from the explained-variance ratio: area proportional to the ratio. */
export function nodeRadius(ratio: number, maxRatio: number, min = 5, max = 17): number {
  if (!(ratio > 0) || !(maxRatio > 0)) return min;
  return min + (max - min) * Math.sqrt(Math.min(1, ratio / maxRatio));
}

/** The layers the Layers view draws: the gallery rows when two or more, else every layer. */
export function chosenLayers(run: RunInfo, rows: readonly string[]): string[] {
  const names = run.layers.map((l) => l.name);
  const picked = names.filter((n) => rows.includes(n));
  return picked.length >= 2 ? picked : names;
}

// ---- what components mean -----------------------------------------------------------------------

/** "η² = 0.71" (categorical) or "r = +0.71" (numeric); a dash where undefined. */
export function formatStatistic(statistic: AssociationColumn['statistic'], value: number | null, digits = 2): string {
  const name = statistic === 'eta2' ? 'η²' : 'r';
  return `${name} = ${formatStatValue(statistic, value, digits)}`;
}

/** The value alone: "0.71", "+0.71", "−0.71" (a true minus sign), or "–". */
export function formatStatValue(statistic: AssociationColumn['statistic'], value: number | null, digits = 2): string {
  if (value === null || !Number.isFinite(value)) return '–';
  const text = Math.abs(value).toFixed(digits);
  if (statistic === 'eta2') return text;
  if (Number(text) === 0) return text;
  return `${value < 0 ? '−' : '+'}${text}`;
}

/** The strength in [0, 1]: eta² itself, |r| for a correlation; NaN where undefined. */
export function strength(value: number | null): number {
  if (value === null || !Number.isFinite(value)) return NaN;
  return Math.min(1, Math.abs(value));
}

export interface ComponentMeaning {
  column: string;
  statistic: AssociationColumn['statistic'];
  value: number | null;
  summary: string;
  /** "η² = 0.71" or "r = +0.71" */
  stat: string;
}

/**
 * What component `pc` means, according to `prefer` (a column name) when the answer has it,
 * else the first column (the label column when the run has labels). null when nothing is known.
 */
export function componentMeaning(columns: readonly AssociationColumn[] | null | undefined, pc: number, prefer?: string | null): ComponentMeaning | null {
  if (!columns?.length) return null;
  const column = (prefer ? columns.find((c) => c.name === prefer) : undefined) ?? columns[0];
  if (pc < 0 || pc >= column.values.length) return null;
  const value = column.values[pc] ?? null;
  return {
    column: column.name,
    statistic: column.statistic,
    value,
    summary: column.summaries[pc] ?? '',
    stat: formatStatistic(column.statistic, value),
  };
}

/** The column where component `pc` is strongest (for "best explained by"). */
export function strongestColumn(columns: readonly AssociationColumn[], pc: number): AssociationColumn | null {
  let best: AssociationColumn | null = null;
  let bestS = -1;
  for (const c of columns) {
    const s = strength(c.values[pc] ?? null);
    if (Number.isFinite(s) && s > bestS) {
      best = c;
      bestS = s;
    }
  }
  return best;
}

// ---- comparing two models -------------------------------------------------------------------------

/** "PC 3", or "−PC 3" when the component is flipped. */
export function signedPcName(pc: number, sign: number): string {
  return `${sign < 0 ? '−' : ''}${pcName(pc)}`;
}

/** "A: PC 1 (55.0%) ~ B: −PC 1 (28.0%) · |r| = 0.55" */
export function pairText(p: MatchedPair): string {
  return `A: ${pcName(p.component_a)} (${formatPercent(p.ratio_a)}) ~ B: ${signedPcName(p.component_b, p.sign)} (${formatPercent(p.ratio_b)}) · |r| = ${p.r.toFixed(2)}`;
}

/** The cell of a layers_a x layers_b table with the largest value (the default opened cell). */
export function argmaxCell(table: readonly (readonly (number | null)[])[]): [number, number] | null {
  let best: [number, number] | null = null;
  let bestV = -Infinity;
  table.forEach((row, i) =>
    row.forEach((v, j) => {
      if (v !== null && Number.isFinite(v) && v > bestV) {
        bestV = v;
        best = [i, j];
      }
    }),
  );
  return best;
}

/**
 * The column most strongly associated with component `pc` (largest η² or |r|, the two read on
 * one 0..1 scale of strength), whichever it is: labels, a metadata column such as brightness.
 * null when no column has a defined statistic for it.
 */
export function strongestMeaning(columns: readonly AssociationColumn[] | null | undefined, pc: number): ComponentMeaning | null {
  let best: AssociationColumn | null = null;
  let bestStrength = -1;
  for (const c of columns ?? []) {
    const s = strength(c.values[pc] ?? null);
    if (Number.isFinite(s) && s > bestStrength) {
      best = c;
      bestStrength = s;
    }
  }
  return best ? componentMeaning([best], pc) : null;
}
