/** Directions: a basis of one axis, from the mean of group A to the mean of group B. */
import { apiUrl, cached, request, withSignal } from './http';
import type { DirectionOut } from './types';

/**
 * Make (or find again: same groups, same id) a direction from two groups. Its id says how the
 * server makes it again (two labels: `label:<a>:<b>`; sample ids: a digest of a kept recipe),
 * so probing `basis=dir:<id>` later needs no second post.
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
    return (await res.json()) as DirectionOut;
  };
  return withSignal(cached(`POST ${url} ${text}`, load), signal);
}
