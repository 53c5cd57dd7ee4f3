/**
 * The directions re-post logic, moved unchanged from the old `api.ts` (issue 11): the server
 * engineer removes it in parallel. Its only users are `request` in `http.ts` (the retry after a
 * 404), `postDirection` in `directions.ts` (which records what it posted) and `clearCache`.
 */

/**
 * The directions this page made, by id: the server keeps directions in memory, so after a restart
 * (or once it dropped old ones) probing `basis=dir:<id>` answers 404. The same groups give the
 * same id, so posting them again brings the direction back; see `remakeDirection`.
 */
export const madeDirections = new Map<string, { url: string; body: string }>();
const remaking = new Map<string, Promise<boolean>>();

/** Post the groups of the direction that `url` probes again; whether that worked. */
export function remakeDirection(url: string): Promise<boolean> {
  const basis = new URL(url).searchParams.get('basis');
  const made = basis?.startsWith('dir:') ? madeDirections.get(basis.slice(4)) : undefined;
  if (!basis || !made) return Promise.resolve(false);
  let p = remaking.get(basis);
  if (!p) {
    p = fetch(made.url, { method: 'POST', body: made.body, headers: { 'Content-Type': 'application/json' }, credentials: 'same-origin' })
      .then((res) => res.ok)
      .catch(() => false)
      .finally(() => remaking.delete(basis));
    remaking.set(basis, p);
  }
  return p;
}
