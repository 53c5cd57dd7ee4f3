/** The view state, kept in the query string: back/forward and copied links work. */
import { useCallback, useSyncExternalStore } from 'react';
import { decodeState, encodeState, type ViewState } from '../lib/urlState';

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
