import { createContext, useContext } from 'react';
import type { LayerInfo, RunInfo } from './api';
import type { Theme, UpdateState } from './hooks';
import type { SliceName, SliceState, ViewState } from './lib/urlState';

export interface AppContextValue {
  /** Every served run (the Compare view picks two). */
  runs: RunInfo[];
  run: RunInfo;
  /** The focused layer (probe, scatter, sample view). */
  layer: LayerInfo;
  labels: string[];
  state: ViewState;
  update: UpdateState;
  theme: Theme;
  /** Open a sample in the sample view; `list`: the samples it was shown among (the lightbox steps through them). */
  openSample: (id: number, list?: readonly number[]) => void;
  /** Show a sample large over the page, stepping through the list it was opened from. */
  openLightbox: (id: number) => void;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside <AppContext.Provider>');
  return value;
}

/**
 * The app context with `state` narrowed to the slices a view reads, e.g.
 * `useAppSlices('probe', 'gallery', 'basis')`: reading another view's field does not compile.
 * (Writes may span slices: opening the probe from the gallery sets `layer`, `pc`, `q` and `tab`.)
 */
export function useAppSlices<K extends SliceName>(..._slices: K[]): SlicedContext<K> {
  // the full state is every slice's state: narrowing it is safe (TypeScript cannot see it generically)
  return useApp() as SlicedContext<K>;
}

export type SlicedContext<K extends SliceName> = Omit<AppContextValue, 'state'> & { state: SliceState<K> };
