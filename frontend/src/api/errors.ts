/** A failed API call, and the server's explanation of it. */

/** A failed API call: `detail` is the server's own explanation (or ours when it sent none). */
export class ApiError extends Error {
  readonly status: number;
  readonly detail: string;
  readonly url: string;

  constructor(status: number, detail: string, url: string) {
    super(status ? `${detail} (HTTP ${status})` : detail);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
    this.url = url;
  }
}

/** A refusal (4xx, e.g. runs of two models) will not change on retry; a lost connection might. */
export function isRefusal(error: Error): boolean {
  return error instanceof ApiError && error.status >= 400 && error.status < 500;
}

export function isAbortError(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

/** FastAPI's `detail`: a string, or a list of validation errors ({loc, msg}). */
export function detailText(body: unknown, fallback: string): string {
  if (body && typeof body === 'object' && 'detail' in body) {
    const d = (body as { detail: unknown }).detail;
    if (typeof d === 'string' && d) return d;
    if (Array.isArray(d) && d.length) {
      return d
        .map((e) => {
          if (e && typeof e === 'object' && 'msg' in e) {
            const loc = Array.isArray((e as { loc?: unknown }).loc) ? (e as { loc: unknown[] }).loc.slice(1).join('.') : '';
            return loc ? `${loc}: ${String((e as { msg: unknown }).msg)}` : String((e as { msg: unknown }).msg);
          }
          return JSON.stringify(e);
        })
        .join('; ');
    }
  }
  return fallback;
}
