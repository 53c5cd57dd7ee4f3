/** Directions: a basis of one axis, from the mean of group A to the mean of group B. */
import { apiUrl, cached, request, withSignal } from './http';
import { madeDirections } from './repost';
import type { DirectionOut } from './types';

/**
 * Make (or find again: same groups, same id) a direction from two groups. Probes of it that later
 * answer 404 (a restarted server) post the groups again and retry, see `remakeDirection`.
 */
export function postDirection(
  run: string,
  layer: string,
  body: { label_a: string; label_b: string } | { ids_a: number[]; ids_b: number[] },
  signal?: AbortSignal,
): Promise<DirectionOut> {
  const url = apiUrl(`runs/${encodeURIComponent(run)}/layers/${encodeURIComponent(layer)}/directions`);
  const text = JSON.stringify(body);
  const load = async () => {
    const res = await request(url, undefined, { method: 'POST', body: text, headers: { 'Content-Type': 'application/json' } });
    const made = (await res.json()) as DirectionOut;
    madeDirections.set(made.id, { url, body: text });
    return made;
  };
  return withSignal(cached(`POST ${url} ${text}`, load), signal);
}
