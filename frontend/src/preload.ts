/**
 * The page's first answers requested as soon as the small entry runs, before the app's code is
 * parsed: when the link opens the Scatter view of a named run and layer, the scores of the two
 * shown components, the run list (which the app's first `getRuns` takes over) and, once that
 * names the run's columns, the colour column. The view's own requests then find them in flight
 * (one request per URL).
 */
import { getColumnValues, getRunsEarly, getScatterScores } from './api';
import { colorColumn } from './lib/runInfo';
import { scatterBasis, shownComponents } from './lib/scatterPoints';
import { decodeState } from './lib/urlState';

export function preloadFor(search: string): void {
  const state = decodeState(search);
  const { run, layer } = state;
  if (state.tab !== 'scatter' || !run || !layer) return;
  // an answer the view will not use (axes out of range, a run gone) is the view's to report
  getScatterScores(run, layer, shownComponents(state.x, state.y), undefined, scatterBasis(state.basis)).catch(() => undefined);
  getRunsEarly()
    .then((runs) => {
      const info = runs.find((r) => r.id === run);
      const column = info ? colorColumn(info, state.color) : null;
      if (column) return getColumnValues(run, column.name);
    })
    .catch(() => undefined);
}
