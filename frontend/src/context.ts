import { createContext, useContext } from 'react';
import type { LayerInfo, RunInfo } from './api';
import type { Theme, UpdateState } from './hooks';
import type { ViewState } from './lib/urlState';

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
  openSample: (id: number) => void;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside <AppContext.Provider>');
  return value;
}
