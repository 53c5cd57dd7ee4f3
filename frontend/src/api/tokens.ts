/** Per-token runs: tokens within a window of their text, and a component along one text. */
import { getRoute } from './http';
import type { components } from './schema';

export type TokenContext = components['schemas']['TokenContext'];
export type TokenContexts = components['schemas']['TokenContexts'];
export type TokenStrip = components['schemas']['TokenStrip'];

/** Each token sample with `window` tokens of its text on each side (and the whole text). */
export function getTokenContexts(run: string, ids: number[], window: number, signal?: AbortSignal): Promise<TokenContexts> {
  return getRoute('runs/{run}/tokens', { run }, { ids: ids.join(','), window }, signal);
}

/** A component's score at every token of one text, with the colour scale's ends. */
export function getTokenStrip(run: string, layer: string, c: number, textId: number, basis: string, signal?: AbortSignal): Promise<TokenStrip> {
  return getRoute('runs/{run}/layers/{layer}/components/{c}/texts/{text_id}', { run, layer, c, text_id: textId }, { basis }, signal);
}
