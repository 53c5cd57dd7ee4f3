/** Pure helpers of per-token runs: how a token reads, what an end of a component is made of,
 * and the colour of a score on a strip. */

/** A token as shown in a quote: `' not'` (leading spaces kept, so GPT-2's ' not' differs from 'not'). */
export function quoteToken(token: string): string {
  return `'${token.replace(/\n/g, '\\n')}'`;
}

export interface TokenMakeup {
  token: string;
  count: number;
  total: number;
  /** "9/16 are ' not'" */
  text: string;
}

/** The most common token among `tokens` (ties: the one met first, i.e. the most extreme). */
export function tokenMakeup(tokens: string[]): TokenMakeup | null {
  if (tokens.length === 0) return null;
  const counts = new Map<string, number>();
  for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  let best = tokens[0];
  for (const t of tokens) if ((counts.get(t) ?? 0) > (counts.get(best) ?? 0)) best = t;
  const count = counts.get(best) ?? 0;
  const verb = count === 1 ? 'is' : 'are';
  return { token: best, count, total: tokens.length, text: `${count}/${tokens.length} ${verb} ${quoteToken(best)}` };
}

/** Where `score` lies between `low` and `high`, in [-1, 1] around their middle (clamped). */
export function stripPosition(score: number | null, low: number, high: number): number {
  if (score === null || !Number.isFinite(score) || !(high > low)) return 0;
  const mid = (low + high) / 2;
  const half = (high - low) / 2;
  return Math.max(-1, Math.min(1, (score - mid) / half));
}

/** A diverging colour: blue for low scores, white in the middle, red for high ones. */
export function stripColor(position: number): string {
  const t = Math.min(1, Math.abs(position));
  const [r, g, b] = position < 0 ? [59, 110, 200] : [210, 70, 50];
  const mix = (c: number) => Math.round(255 + (c - 255) * t);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

/** Window sizes offered (tokens each side of the one shown). */
export const TOKEN_WINDOW_MIN = 0;
export const TOKEN_WINDOW_MAX = 16;
export const TOKEN_WINDOW_DEFAULT = 6;

/** A stored window size, or the default when it is missing or out of range. */
export function parseWindow(text: string | null): number {
  const n = Number(text);
  return text !== null && Number.isInteger(n) && n >= TOKEN_WINDOW_MIN && n <= TOKEN_WINDOW_MAX ? n : TOKEN_WINDOW_DEFAULT;
}

export interface ShownToken {
  text: string;
  /** a space goes before it (WordPiece words; GPT-2 tokens carry their own spaces) */
  spaceBefore: boolean;
}

/** How a run of decoded tokens reads as text: tokens that carry their own leading spaces
 * (GPT-2's ' not') are joined as they are; otherwise (WordPiece) words are spaced and '##' pieces
 * join the word before them. */
export function showTokens(tokens: string[]): ShownToken[] {
  const ownSpaces = tokens.some((t) => /^\s/.test(t));
  return tokens.map((t, i) => {
    if (ownSpaces) return { text: t, spaceBefore: false };
    if (t.startsWith('##') && t.length > 2) return { text: t.slice(2), spaceBefore: false };
    return { text: t, spaceBefore: i > 0 && !/^[.,;:!?'")\]]$/.test(t) };
  });
}
