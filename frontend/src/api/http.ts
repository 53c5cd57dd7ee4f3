/**
 * The transport under every API call: URLs relative to the page, errors as `ApiError`, one shared
 * request per URL (answers of a run are immutable), and abort-aware waits on shared requests.
 */
import { ApiError, detailText, isAbortError } from './errors';
import type { ApiPath, JsonOf, PathParamsOf, QueryOf } from './types';

type Scalar = string | number | boolean | undefined;

/** `basis` is "pca" (default), "ica" or "dir:<id>": what the components are (the query leaves out pca). */
export const basisParam = (basis: string) => (basis === 'pca' ? undefined : basis);

/** The page's URL: every request is relative to it, never to the origin's root. */
function pageUrl(): string {
  return typeof window === 'undefined' ? 'http://localhost/' : window.location.href;
}

/**
 * Absolute URL of an API path, relative to the page (`page`, default the current one), so the UI
 * also works under a path prefix: behind jupyter-server-proxy (`/user/a/proxy/8031/`), Colab's
 * proxy, or `serve --root-path`. The page's own query (`?token=`, the view's state) is dropped.
 */
export function apiUrl(path: string, params?: Record<string, Scalar>, page: string = pageUrl()): string {
  const url = new URL(`api/${path}`, page);
  url.search = '';
  url.hash = '';
  if (params) {
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
  }
  return url.toString();
}

/**
 * URL of a route of the schema: `{name}` parts filled (encoded) from `params`, the query checked
 * against the route's declared query parameters. `extra` carries what the schema does not declare
 * (the run version `v` that only busts browser caches).
 */
export function routeUrl<P extends ApiPath>(
  path: P,
  params: PathParamsOf<P>,
  query?: { [K in keyof QueryOf<P>]?: QueryOf<P>[K] | undefined },
  extra?: Record<string, Scalar>,
): string {
  const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String((params as Record<string, unknown>)[name])));
  return apiUrl(filled, { ...(query as Record<string, Scalar> | undefined), ...extra });
}

export async function request(url: string, signal?: AbortSignal, init?: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { signal, credentials: 'same-origin', ...init });
  } catch (err) {
    if (isAbortError(err)) throw err;
    throw new ApiError(0, `Could not reach the Embedding Explorer server (${(err as Error).message}).`, url);
  }
  if (!res.ok) {
    let body: unknown = null;
    const text = await res.text().catch(() => '');
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const fallback = text && text.length < 300 && !text.trimStart().startsWith('<') ? text : res.statusText || 'Request failed';
    throw new ApiError(res.status, detailText(body, fallback), url);
  }
  return res;
}

const cache = new Map<string, Promise<unknown>>();

/** Share one request per URL; failed or aborted requests are forgotten so they can be retried. */
export function cached<T>(key: string, load: () => Promise<T>): Promise<T> {
  const hit = cache.get(key);
  if (hit) return hit as Promise<T>;
  const p = load();
  cache.set(key, p);
  p.catch(() => cache.delete(key));
  return p;
}

/** Abort-aware wait on a shared promise: aborting stops the wait, not the shared request. */
export function withSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new DOMException('Aborted', 'AbortError'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DOMException('Aborted', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await request(url, signal);
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiError(res.status, 'The server sent an answer that is not valid JSON.', url);
  }
}

export function cachedJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  return withSignal(cached(url, () => getJson<T>(url)), signal);
}

/** A cached GET of a schema route, typed by the route's 200 answer. */
export function getRoute<P extends ApiPath>(
  path: P,
  params: PathParamsOf<P>,
  query?: { [K in keyof QueryOf<P>]?: QueryOf<P>[K] | undefined },
  signal?: AbortSignal,
): Promise<JsonOf<P>> {
  return cachedJson<JsonOf<P>>(routeUrl(path, params, query), signal);
}

/** Forget cached answers (tests, or after the server's runs changed). */
export function clearCache(): void {
  cache.clear();
}
