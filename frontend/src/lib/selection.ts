/**
 * Compact, URL-safe encoding of a set of sample ids (a lasso selection).
 *
 * Ids are sorted and de-duplicated, then grouped into runs of consecutive ids. Each run is one
 * token `gap` or `gap-len`, both base-36: `gap` is the distance from the end of the previous run
 * (start - previousEnd - 1, the first run counts from -1), `len` is the run's length minus one
 * (omitted for a single id). Tokens are joined by ".", so every character is URL-unreserved.
 *
 *   [0, 1, 2, 5, 9, 10]  ->  "0-2.2.3-1"
 */

const SEP = '.';
const RANGE = '-';
const TOKEN = /^([0-9a-z]+)(?:-([0-9a-z]+))?$/;

export function normalizeIds(ids: Iterable<number>): number[] {
  const out = Array.from(new Set(Array.from(ids).filter((v) => Number.isInteger(v) && v >= 0)));
  out.sort((a, b) => a - b);
  return out;
}

export function encodeSelection(ids: Iterable<number>): string {
  const sorted = normalizeIds(ids);
  const tokens: string[] = [];
  let prevEnd = -1;
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i];
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) {
      i += 1;
      end = sorted[i];
    }
    const gap = (start - prevEnd - 1).toString(36);
    tokens.push(end > start ? `${gap}${RANGE}${(end - start).toString(36)}` : gap);
    prevEnd = end;
    i += 1;
  }
  return tokens.join(SEP);
}

/** Decode `encodeSelection`'s output; throws a RangeError naming the bad token. */
export function decodeSelection(text: string): number[] {
  if (!text) return [];
  const ids: number[] = [];
  let prevEnd = -1;
  for (const token of text.split(SEP)) {
    const m = TOKEN.exec(token);
    if (!m) throw new RangeError(`bad selection token ${JSON.stringify(token)}`);
    const start = prevEnd + 1 + parseInt(m[1], 36);
    const len = m[2] === undefined ? 0 : parseInt(m[2], 36);
    if (!Number.isSafeInteger(start + len)) {
      throw new RangeError(`selection token ${JSON.stringify(token)} is out of range`);
    }
    for (let id = start; id <= start + len; id += 1) ids.push(id);
    prevEnd = start + len;
  }
  return ids;
}

/** Like decodeSelection, but an unreadable value gives an empty selection. */
export function tryDecodeSelection(text: string | null): number[] {
  if (!text) return [];
  try {
    return decodeSelection(text);
  } catch {
    return [];
  }
}
