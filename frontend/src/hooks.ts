/** React hooks: fetching with stale-answer protection, the URL state, the theme. */
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { ApiError, getRenderings, isAbortError } from './api';
import { decodeState, encodeState, type ViewState } from './lib/urlState';

export interface AsyncState<T> {
  data: T | null;
  error: ApiError | Error | null;
  loading: boolean;
}

/**
 * Runs `load` whenever `deps` change; a newer call aborts the older one, so a stale answer
 * never replaces a fresh one. `keepPrevious` keeps the last data shown while the next loads.
 */
export function useAsync<T>(
  load: ((signal: AbortSignal) => Promise<T>) | null,
  deps: readonly unknown[],
  keepPrevious = false,
): AsyncState<T> & { retry: () => void } {
  const [state, setState] = useState<AsyncState<T>>({ data: null, error: null, loading: load !== null });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!load) {
      setState({ data: null, error: null, loading: false });
      return;
    }
    const controller = new AbortController();
    setState((s) => ({ data: keepPrevious ? s.data : null, error: null, loading: true }));
    load(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ data, error: null, loading: false });
      },
      (error: unknown) => {
        if (controller.signal.aborted || isAbortError(error)) return;
        setState({ data: null, error: error instanceof Error ? error : new Error(String(error)), loading: false });
      },
    );
    return () => controller.abort();
  }, [...deps, attempt]);
  const retry = useCallback(() => setAttempt((a) => a + 1), []);
  return { ...state, retry };
}

// ---- URL state ------------------------------------------------------------------------------

const listeners = new Set<() => void>();
let snapshotSearch = typeof window === 'undefined' ? '' : window.location.search;
let snapshot = decodeState(snapshotSearch);

function readSnapshot(): ViewState {
  const search = window.location.search;
  if (search !== snapshotSearch) {
    snapshotSearch = search;
    snapshot = decodeState(search);
  }
  return snapshot;
}

function notify() {
  for (const l of listeners) l();
}

if (typeof window !== 'undefined') window.addEventListener('popstate', notify);

export type UpdateState = (patch: Partial<ViewState>, options?: { replace?: boolean }) => void;

/** The view state, read from and written to the query string (back/forward work). */
export function useUrlState(): [ViewState, UpdateState] {
  const state = useSyncExternalStore(
    (cb) => {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    readSnapshot,
    readSnapshot,
  );
  const update = useCallback<UpdateState>((patch, options) => {
    const current = readSnapshot();
    const next = { ...current, ...patch };
    const search = encodeState(next, window.location.search);
    if (search === window.location.search) return;
    const url = `${window.location.pathname}${search}${window.location.hash}`;
    if (options?.replace) window.history.replaceState(null, '', url);
    else window.history.pushState(null, '', url);
    notify();
  }, []);
  return [state, update];
}

// ---- theme ----------------------------------------------------------------------------------

export type Theme = 'light' | 'dark';
const THEME_KEY = 'ee-theme';

function systemTheme(): Theme {
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** Light or dark: the stored choice, else the system's; the toggle stores a choice. */
export function useTheme(): [Theme, () => void] {
  const [choice, setChoice] = useState<Theme | null>(() => {
    const stored = window.localStorage?.getItem(THEME_KEY);
    return stored === 'light' || stored === 'dark' ? stored : null;
  });
  const [system, setSystem] = useState<Theme>(systemTheme);
  useEffect(() => {
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    if (!mq) return;
    const on = () => setSystem(mq.matches ? 'dark' : 'light');
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  const theme = choice ?? system;
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  const toggle = useCallback(() => {
    const next: Theme = theme === 'dark' ? 'light' : 'dark';
    window.localStorage?.setItem(THEME_KEY, next);
    setChoice(next);
  }, [theme]);
  return [theme, toggle];
}

/** The value of a CSS variable on <html>, re-read when the theme changes. */
export function useCssVar(name: string, theme: Theme): string {
  const [value, setValue] = useState('');
  useEffect(() => {
    setValue(getComputedStyle(document.documentElement).getPropertyValue(name).trim());
  }, [name, theme]);
  return value;
}

// ---- text renderings, fetched in batches ----------------------------------------------------

const textCache = new Map<string, string>();
const textWaiters = new Map<string, Set<() => void>>();
const queued = new Map<string, Set<number>>();
const inflight = new Set<string>();
let flushTimer: ReturnType<typeof setTimeout> | null = null;

function textKey(run: string, id: number) {
  return `${run}\u0000${id}`;
}

function flushTexts() {
  flushTimer = null;
  for (const [run, idSet] of queued) {
    queued.delete(run);
    const ids = Array.from(idSet);
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      for (const id of chunk) inflight.add(textKey(run, id));
      getRenderings(run, chunk).then(
        (r) => {
          for (const item of r.items) {
            const key = textKey(run, item.id);
            inflight.delete(key);
            textCache.set(key, 'text' in item ? item.text : '');
            textWaiters.get(key)?.forEach((w) => w());
            textWaiters.delete(key);
          }
        },
        () => {
          for (const id of chunk) {
            const key = textKey(run, id);
            inflight.delete(key);
            textCache.set(key, '(text unavailable)');
            textWaiters.get(key)?.forEach((w) => w());
            textWaiters.delete(key);
          }
        },
      );
    }
  }
}

/** The stored text of a sample; requests from one render pass are batched into one call. */
export function useSampleText(run: string, id: number, enabled: boolean): string | null {
  const key = textKey(run, id);
  const [, force] = useState(0);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    if (!enabled || textCache.has(key)) return;
    const wake = () => mounted.current && force((x) => x + 1);
    if (!textWaiters.has(key)) textWaiters.set(key, new Set());
    textWaiters.get(key)!.add(wake);
    if (!inflight.has(key)) {
      if (!queued.has(run)) queued.set(run, new Set());
      queued.get(run)!.add(id);
      if (flushTimer === null) flushTimer = setTimeout(flushTexts, 0);
    }
    return () => {
      mounted.current = false;
      textWaiters.get(key)?.delete(wake);
    };
  }, [key, run, id, enabled]);
  return enabled ? textCache.get(key) ?? null : null;
}
