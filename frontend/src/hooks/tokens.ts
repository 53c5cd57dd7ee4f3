/** Per-token runs: the token window setting, token contexts fetched in batches, a text's strip. */
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { getTokenContexts, getTokenStrip, type TokenContext, type TokenStrip } from '../api';
import { parseWindow } from '../lib/tokens';
import { useAsync, type AsyncState } from './async';

const WINDOW_KEY = 'ee.tokenWindow';
let windowSize = parseWindow(typeof localStorage === 'undefined' ? null : localStorage.getItem(WINDOW_KEY));
const windowListeners = new Set<() => void>();

/** Tokens shown on each side of a token (a setting kept in the browser), and its setter. */
export function useTokenWindow(): [number, (n: number) => void] {
  const value = useSyncExternalStore(
    (listener) => {
      windowListeners.add(listener);
      return () => windowListeners.delete(listener);
    },
    () => windowSize,
  );
  const set = (n: number) => {
    windowSize = parseWindow(String(n));
    try {
      localStorage.setItem(WINDOW_KEY, String(windowSize));
    } catch {
      /* private mode: the setting lasts for this page only */
    }
    windowListeners.forEach((l) => l());
  };
  return [value, set];
}

type Entry = TokenContext | 'failed';
const contexts = new Map<string, Entry>();
const waiters = new Map<string, Set<() => void>>();
const queued = new Map<string, Set<number>>(); // "run\0window" -> ids
const inflight = new Set<string>();
let timer: ReturnType<typeof setTimeout> | null = null;

const keyOf = (run: string, window: number, id: number) => `${run}\u0000${window}\u0000${id}`;

function settle(key: string, entry: Entry) {
  inflight.delete(key);
  contexts.set(key, entry);
  waiters.get(key)?.forEach((w) => w());
  waiters.delete(key);
}

function flush() {
  timer = null;
  for (const [group, idSet] of queued) {
    queued.delete(group);
    const [run, w] = group.split('\u0000');
    const window = Number(w);
    const ids = Array.from(idSet);
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      getTokenContexts(run, chunk, window).then(
        (r) => r.items.forEach((item) => settle(keyOf(run, window, item.id), item)),
        () => chunk.forEach((id) => settle(keyOf(run, window, id), 'failed')),
      );
    }
  }
}

/** Token samples in context; requests of one render pass are batched into one call.
 * Returns one entry per id: the context, null while loading, or 'failed'. */
export function useTokenContexts(run: string, ids: number[], window: number, enabled = true): (TokenContext | null | 'failed')[] {
  const [, force] = useState(0);
  const mounted = useRef(true);
  const idsKey = ids.join(',');
  useEffect(() => {
    mounted.current = true;
    if (!enabled) return;
    const wake = () => mounted.current && force((x) => x + 1);
    const keys: string[] = [];
    for (const id of ids) {
      const key = keyOf(run, window, id);
      if (contexts.has(key)) continue;
      keys.push(key);
      if (!waiters.has(key)) waiters.set(key, new Set());
      waiters.get(key)!.add(wake);
      if (!inflight.has(key)) {
        inflight.add(key);
        const group = `${run}\u0000${window}`;
        if (!queued.has(group)) queued.set(group, new Set());
        queued.get(group)!.add(id);
      }
    }
    if (keys.length && timer === null) timer = setTimeout(flush, 0);
    return () => {
      mounted.current = false;
      keys.forEach((k) => waiters.get(k)?.delete(wake));
    };
  }, [run, window, idsKey, enabled]);
  return ids.map((id) => (enabled ? contexts.get(keyOf(run, window, id)) ?? null : null));
}

/** A component's scores along every token of one text (null: nothing asked). */
export function useTokenStrip(run: string, layer: string, c: number, textId: number | null, basis: string): AsyncState<TokenStrip> & { retry: () => void } {
  return useAsync(textId === null ? null : (signal) => getTokenStrip(run, layer, c, textId, basis, signal), [run, layer, c, textId, basis], true);
}
