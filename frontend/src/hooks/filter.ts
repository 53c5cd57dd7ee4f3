/** The shared sample filter as views use it: its server parameter and the ids it keeps. */
import { useMemo } from 'react';
import { getSelection } from '../api';
import { useApp } from '../context';
import { filterParam } from '../lib/filter';
import { useAsync } from './async';

/** The URL's filter as the server's `filter` parameter (undefined: no filter). */
export function useFilterParam(): string | undefined {
  const { state } = useApp();
  return useMemo(() => filterParam(state.filter), [state.filter]);
}

/** The ids the filter keeps in `run` (null data while loading; no request without a filter). */
export function useSelection(run: string, filter: string | undefined) {
  return useAsync(filter ? (signal) => getSelection(run, filter, signal) : null, [run, filter]);
}
