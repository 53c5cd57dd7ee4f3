/** Label counts and short summaries ("7/8 Sandal"). */

export interface LabelCount {
  label: string;
  count: number;
}

/** Counts per label, most frequent first (ties: the order labels were first seen). */
export function labelCounts(labels: Iterable<string | null | undefined>): LabelCount[] {
  const counts = new Map<string, number>();
  for (const l of labels) {
    const key = l === null || l === undefined || l === '' ? '—' : l;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const order = Array.from(counts.keys());
  return order
    .map((label) => ({ label, count: counts.get(label)! }))
    .sort((a, b) => b.count - a.count || order.indexOf(a.label) - order.indexOf(b.label));
}

export interface Dominant {
  label: string;
  count: number;
  total: number;
  /** e.g. "7/8 Sandal" */
  text: string;
}

/** The most frequent label among `labels`, or null when there are none. */
export function dominantLabel(labels: readonly (string | null | undefined)[]): Dominant | null {
  const counts = labelCounts(labels);
  if (!counts.length) return null;
  const { label, count } = counts[0];
  return { label, count, total: labels.length, text: `${count}/${labels.length} ${label}` };
}
