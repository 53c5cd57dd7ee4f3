/**
 * The one sample filter every view shares (gallery, probe, scatter, data sets), as the server
 * takes it (`?filter=`, JSON; see `embedding_explorer.filters`): labels isolated or hidden,
 * ranges of numeric columns, boolean columns, and a text search. It lives in the URL as `f`.
 */

export interface SampleFilter {
  /** Only these labels (null: every label). */
  labels: string[] | null;
  /** Not these labels. */
  hide: string[];
  /** Numeric column -> [low, high], inclusive; null for an open end. */
  ranges: Record<string, [number | null, number | null]>;
  /** Boolean column -> the value kept (e.g. `correct: false`: the misclassified). */
  flags: Record<string, boolean>;
  /** Words that must all occur in the sample's text, label name or metadata values. */
  query: string;
}

export const NO_FILTER: SampleFilter = { labels: null, hide: [], ranges: {}, flags: {}, query: '' };

export function isEmptyFilter(f: SampleFilter): boolean {
  return f.labels === null && !f.hide.length && !Object.keys(f.ranges).length && !Object.keys(f.flags).length && !f.query.trim();
}

/** The server's `filter` parameter: canonical JSON of the filtering parts, or undefined for none. */
export function filterParam(f: SampleFilter): string | undefined {
  if (isEmptyFilter(f)) return undefined;
  const out: Record<string, unknown> = {};
  if (f.labels !== null) out.labels = f.labels;
  if (f.hide.length) out.hide = f.hide;
  const ranges = Object.keys(f.ranges).sort();
  if (ranges.length) out.ranges = Object.fromEntries(ranges.map((k) => [k, f.ranges[k]]));
  const flags = Object.keys(f.flags).sort();
  if (flags.length) out.flags = Object.fromEntries(flags.map((k) => [k, f.flags[k]]));
  if (f.query.trim()) out.query = f.query.trim();
  return JSON.stringify(out);
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isBound = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isFinite(v));

/** The filter of a URL's `f` (bad or missing parts are dropped, never thrown). */
export function decodeFilter(text: string | null): SampleFilter {
  if (!text) return NO_FILTER;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return NO_FILTER;
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return NO_FILTER;
  const o = raw as Record<string, unknown>;
  const ranges: SampleFilter['ranges'] = {};
  if (o.ranges && typeof o.ranges === 'object') {
    for (const [k, v] of Object.entries(o.ranges as Record<string, unknown>)) {
      if (Array.isArray(v) && v.length === 2 && isBound(v[0]) && isBound(v[1]) && (v[0] === null || v[1] === null || v[0] <= v[1])) ranges[k] = [v[0], v[1]];
    }
  }
  const flags: SampleFilter['flags'] = {};
  if (o.flags && typeof o.flags === 'object') {
    for (const [k, v] of Object.entries(o.flags as Record<string, unknown>)) if (typeof v === 'boolean') flags[k] = v;
  }
  return {
    labels: isStrings(o.labels) ? o.labels : null,
    hide: isStrings(o.hide) ? o.hide : [],
    ranges,
    flags,
    query: typeof o.query === 'string' ? o.query.slice(0, 200) : '',
  };
}

/** A legend click: isolate `label` (again: show every label). */
export function isolateLabel(f: SampleFilter, label: string): SampleFilter {
  const only = f.labels !== null && f.labels.length === 1 && f.labels[0] === label;
  return { ...f, labels: only ? null : [label], hide: f.hide.filter((h) => h !== label) };
}

/** Hide `label`, or show it again when hidden. */
export function toggleHidden(f: SampleFilter, label: string): SampleFilter {
  const hidden = f.hide.includes(label);
  const labels = f.labels === null ? null : f.labels.filter((l) => l !== label);
  return { ...f, labels: labels !== null && labels.length === 0 ? null : labels, hide: hidden ? f.hide.filter((h) => h !== label) : [...f.hide, label] };
}

/** Whether samples of `label` pass the label parts. */
export function labelShown(f: SampleFilter, label: string): boolean {
  return (f.labels === null || f.labels.includes(label)) && !f.hide.includes(label);
}

export function withRange(f: SampleFilter, column: string, range: [number | null, number | null] | null): SampleFilter {
  const ranges = { ...f.ranges };
  if (range === null || (range[0] === null && range[1] === null)) delete ranges[column];
  else ranges[column] = range;
  return { ...f, ranges };
}

export function withFlag(f: SampleFilter, column: string, value: boolean | null): SampleFilter {
  const flags = { ...f.flags };
  if (value === null) delete flags[column];
  else flags[column] = value;
  return { ...f, flags };
}

/** One removable part of a filter, as the filter bar's chips show it. */
export interface FilterChip {
  key: string;
  text: string;
  remove: (f: SampleFilter) => SampleFilter;
}

export function filterChips(f: SampleFilter, format: (v: number) => string): FilterChip[] {
  const chips: FilterChip[] = [];
  if (f.labels !== null) chips.push({ key: 'labels', text: `only ${f.labels.join(', ')}`, remove: (g) => ({ ...g, labels: null }) });
  for (const h of f.hide) chips.push({ key: `hide:${h}`, text: `hiding ${h}`, remove: (g) => ({ ...g, hide: g.hide.filter((x) => x !== h) }) });
  for (const [k, [lo, hi]] of Object.entries(f.ranges)) {
    const text = lo !== null && hi !== null ? `${format(lo)} ≤ ${k} ≤ ${format(hi)}` : lo !== null ? `${k} ≥ ${format(lo)}` : `${k} ≤ ${format(hi as number)}`;
    chips.push({ key: `range:${k}`, text, remove: (g) => withRange(g, k, null) });
  }
  for (const [k, v] of Object.entries(f.flags)) {
    const text = k === 'correct' ? (v ? 'correct only' : 'misclassified only') : `${k} = ${v}`;
    chips.push({ key: `flag:${k}`, text, remove: (g) => withFlag(g, k, null) });
  }
  if (f.query.trim()) chips.push({ key: 'query', text: `“${f.query.trim()}”`, remove: (g) => ({ ...g, query: '' }) });
  return chips;
}

const BOOLEAN_TEXTS = new Set(['True', 'False', 'true', 'false', '0', '1', '0.0', '1.0']);

/** Whether a categorical column holds booleans (categories only True/False, or 0/1: what the server's `flags` take). */
export function isBooleanColumn(categories: readonly string[] | null | undefined): boolean {
  return !!categories && categories.length > 0 && categories.every((c) => BOOLEAN_TEXTS.has(c));
}
