/**
 * A direction's two groups as they live in the URL, so a link recreates the direction.
 *
 * A group is a label (`l:<label name>`) or a set of sample ids (`s:<selection>`, the lasso
 * encoding of lib/selection). The server gets two labels as `{label_a, label_b}`, anything else as
 * two id lists (a label group then becomes the ids of that label's samples).
 */
import { encodeSelection, normalizeIds, tryDecodeSelection } from './selection';

export type GroupSpec = { kind: 'label'; label: string } | { kind: 'ids'; ids: number[] };

export type DirectionRequest = { label_a: string; label_b: string } | { ids_a: number[]; ids_b: number[] };

export function encodeGroup(group: GroupSpec): string {
  return group.kind === 'label' ? `l:${group.label}` : `s:${encodeSelection(group.ids)}`;
}

/** The group a URL value names, or null when it names none (unreadable or empty). */
export function decodeGroup(text: string | null): GroupSpec | null {
  if (!text) return null;
  if (text.startsWith('l:') && text.length > 2) return { kind: 'label', label: text.slice(2) };
  if (text.startsWith('s:')) {
    const ids = tryDecodeSelection(text.slice(2));
    return ids.length ? { kind: 'ids', ids } : null;
  }
  return null;
}

/** How a group reads in the UI: its label, or "selection (120)". */
export function groupTitle(group: GroupSpec | null): string {
  if (!group) return '—';
  return group.kind === 'label' ? group.label : `selection (${group.ids.length.toLocaleString('en-US')})`;
}

/**
 * The sample ids of a group: a selection's ids, or the samples whose label code is that label's
 * position in `labels` (null while the label codes are not loaded).
 */
export function groupIds(group: GroupSpec, labels: readonly string[], codes: ArrayLike<number> | null): number[] | null {
  if (group.kind === 'ids') return normalizeIds(group.ids);
  if (!codes) return null;
  const code = labels.indexOf(group.label);
  const ids: number[] = [];
  if (code < 0) return ids;
  for (let i = 0; i < codes.length; i += 1) if (codes[i] === code) ids.push(i);
  return ids;
}

/**
 * The request body for two groups: labels by name when both are labels (the server checks
 * them), else two id lists; null while a label's samples are still unknown.
 */
export function directionRequest(
  a: GroupSpec,
  b: GroupSpec,
  labels: readonly string[],
  codes: ArrayLike<number> | null,
): DirectionRequest | null {
  if (a.kind === 'label' && b.kind === 'label') return { label_a: a.label, label_b: b.label };
  const idsA = groupIds(a, labels, codes);
  const idsB = groupIds(b, labels, codes);
  return idsA && idsB ? { ids_a: idsA, ids_b: idsB } : null;
}

/** A label group whose label the run does not have (a link from another run), or null. */
export function unknownLabel(a: GroupSpec, b: GroupSpec, labels: readonly string[]): string | null {
  for (const g of [a, b]) if (g.kind === 'label' && !labels.includes(g.label)) return g.label;
  return null;
}

/** How a direction's separation reads: "separation 1.23 σ", or "separation –" when the server
 * could not measure it (single-sample groups; null) or it is infinite (no spread). */
export function formatSeparation(separation: number | null | undefined): string {
  return separation === null || separation === undefined || !Number.isFinite(separation) ? 'separation –' : `separation ${separation.toFixed(2)} σ`;
}
