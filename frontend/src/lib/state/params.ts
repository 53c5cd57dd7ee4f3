/**
 * Query-parameter codecs: each field of a view's state is one row of its slice's table, saying
 * which parameter holds it, how a bad or missing value decodes (to the default) and that the
 * default is left out of the URL.
 */

/** One field of a state slice `S` kept in one query parameter. */
export interface Param<S> {
  key: string;
  field: keyof S;
  decode: (p: URLSearchParams) => unknown;
  /** Writes the value into `p`; leaves the default out. */
  encode: (value: unknown, p: URLSearchParams) => void;
}

/** A typed row of a slice's table. */
export function param<S, K extends keyof S>(
  key: string,
  field: K,
  decode: (p: URLSearchParams) => S[K],
  encode: (value: S[K], p: URLSearchParams) => void,
): Param<S> {
  return { key, field, decode, encode: encode as (value: unknown, p: URLSearchParams) => void };
}

export function intParam(value: string | null, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === null || !/^-?\d+$/.test(value)) return fallback;
  const v = parseInt(value, 10);
  return v < min || v > max ? fallback : v;
}

/** A text field: empty or missing is null. */
export function textParam<S, K extends keyof S>(key: string, field: K): Param<S> {
  return param<S, K>(
    key,
    field,
    (p) => (p.get(key) || null) as S[K],
    (v, p) => {
      if (v) p.set(key, String(v));
    },
  );
}

/** A non-negative integer or null (missing, negative or not an integer). */
export function indexParam<S, K extends keyof S>(key: string, field: K): Param<S> {
  return param<S, K>(
    key,
    field,
    (p) => {
      const text = p.get(key);
      return (text === null ? null : intParam(text, -1) >= 0 ? intParam(text, -1) : null) as S[K];
    },
    (v, p) => {
      if (v !== null) p.set(key, String(v));
    },
  );
}

/** A non-negative integer with a default. */
export function countParam<S, K extends keyof S>(key: string, field: K, fallback: number): Param<S> {
  return param<S, K>(
    key,
    field,
    (p) => intParam(p.get(key), fallback) as S[K],
    (v, p) => {
      if (v !== fallback) p.set(key, String(v));
    },
  );
}

/** One of `values`, with a default. */
export function enumParam<S, K extends keyof S>(key: string, field: K, values: readonly string[], fallback: S[K]): Param<S> {
  return param<S, K>(
    key,
    field,
    (p) => (values.includes(p.get(key) ?? '') ? (p.get(key) as S[K]) : fallback),
    (v, p) => {
      if (v !== fallback) p.set(key, String(v));
    },
  );
}
