/**
 * Resource hooks: one per API answer a view shows. Each owns its fetching, aborts the request it
 * no longer needs and never lets the answer of an old request replace a newer one (`useAsync`);
 * views only render what they return. A `null` argument means "nothing to load yet".
 */
import { useEffect, useMemo, useState } from 'react';
import {
  getAssociations,
  getCka,
  getColumnValues,
  getDatasetExtremes,
  getDatasetHistogram,
  getDatasetShift,
  getGallery,
  getHistogram,
  getInsights,
  getMatched,
  getPcCorrelation,
  getRuns,
  getSample,
  getSampleScores,
  getScatterScores,
  type Associations,
  type ColumnInfo,
} from '../api';
import { useAsync } from './async';

/** Every served run. */
export function useRuns() {
  return useAsync((signal) => getRuns(signal), []);
}

/** The extremes of every component of a layer along `basis` (null: not known yet). */
export function useGallery(run: string, layer: string, n: number, basis: string | null, keepPrevious = false, filter?: string) {
  return useAsync(basis ? (signal) => getGallery(run, layer, n, signal, basis, filter) : null, [run, layer, n, basis, filter], keepPrevious);
}

/** The score histogram of one component, by label when `byLabel`. */
export function useHistogram(run: string, layer: string, component: number, bins: number, byLabel: boolean, basis: string | null, filter?: string) {
  return useAsync(basis ? (signal) => getHistogram(run, layer, component, bins, byLabel, signal, basis, filter) : null, [run, layer, component, byLabel, basis, filter]);
}

/** What each label and metadata column says about each component; only for `enabled` (PCA). */
export function useAssociations(run: string, layer: string, enabled = true) {
  return useAsync(enabled ? (signal) => getAssociations(run, layer, signal) : null, [run, layer, enabled]);
}

/** Associations of several layers, one per layer, null where one failed (they are optional). */
export function useAssociationsOf(run: string, layers: string[]) {
  const key = layers.join('\u0000');
  return useAsync(
    (signal): Promise<(Associations | null)[]> => Promise.all(layers.map((l) => getAssociations(run, l, signal).catch(() => null))),
    [run, key],
  );
}

/** Scores of all samples on `components`, quantised for drawing (16-bit codes). */
export function useScatterScores(run: string, layer: string, components: number[], basis: string) {
  return useAsync((signal) => getScatterScores(run, layer, components, signal, basis), [run, layer, components, basis]);
}

/** A per-sample column's values (null column: none). */
export function useColumnValues(run: string, column: string | null) {
  return useAsync(column ? (signal) => getColumnValues(run, column, signal) : null, [run, column]);
}

/** A column with its values, for colouring (null column: no colouring). */
export function useColoring(run: string, column: ColumnInfo | null) {
  return useAsync(
    column ? async (signal) => ({ column, values: await getColumnValues(run, column.name, signal) }) : null,
    [run, column?.name],
  );
}

/** A sample's detail, with its scores on `layer`. */
export function useSample(run: string, id: number, layer: string | null) {
  return useAsync((signal) => getSample(run, id, layer, signal), [run, id, layer], true);
}

/** A sample's exact scores on `layer` along `basis` (null while loading or for no sample): asked
 * for once `id` has stayed put for `settleMs`, and a request superseded by the next id is cancelled. */
export function useSampleScores(run: string, id: number | null, layer: string, basis: string, settleMs = 80): number[] | null {
  const [settled, setSettled] = useState<number | null>(null);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(id), settleMs);
    return () => clearTimeout(timer);
  }, [id, settleMs]);
  const asked = settled === id ? id : null;
  const exact = useAsync(
    asked === null ? null : async (signal) => ({ id: asked, scores: await getSampleScores(run, asked, layer, basis, signal) }),
    [run, asked, layer, basis],
  );
  return exact.data && exact.data.id === id ? exact.data.scores : null;
}

/** Correlations of the components of each neighbouring pair of `layers` of one run. */
export function useNeighbourCorrelations(run: string, layers: string[]) {
  const key = layers.join('\u0000');
  const pairs = useMemo(() => layers.slice(1).map((right, i) => [layers[i], right] as const), [key]);
  const corr = useAsync((signal) => Promise.all(pairs.map(([a, b]) => getPcCorrelation(run, a, b, undefined, signal))), [run, key], true);
  return { pairs, corr };
}

/** Correlations between the components of two layers of one run. */
export function usePcCorrelation(run: string, layerA: string, layerB: string) {
  return useAsync((signal) => getPcCorrelation(run, layerA, layerB, undefined, signal), [run, layerA, layerB]);
}

/** Linear CKA between every layer of two runs. */
export function useCka(runA: string, runB: string) {
  return useAsync((signal) => getCka(runA, runB, signal), [runA, runB]);
}

/** The components of two layers of two runs, paired. */
export function useMatched(runA: string, layerA: string, runB: string, layerB: string) {
  return useAsync((signal) => getMatched(runA, layerA, runB, layerB, signal), [runA, layerA, runB, layerB]);
}

/** Run B against reference run A on A's components of `layer` (among the samples `filter` keeps). */
export function useDatasetShift(runA: string, runB: string, layer: string, filter?: string) {
  return useAsync((signal) => getDatasetShift(runA, runB, layer, signal, filter), [runA, runB, layer, filter]);
}

export function useDatasetHistogram(runA: string, runB: string, layer: string, component: number, bins: number, filter?: string) {
  return useAsync((signal) => getDatasetHistogram(runA, runB, layer, component, bins, signal, filter), [runA, runB, layer, component, filter]);
}

export function useDatasetExtremes(runA: string, runB: string, layer: string, component: number, n: number, filter?: string) {
  return useAsync((signal) => getDatasetExtremes(runA, runB, layer, component, n, signal, filter), [runA, runB, layer, component, filter]);
}

/** The run's findings (input statistics, classes, errors, data-set shifts, CKA), strongest first. */
export function useInsights(run: string) {
  return useAsync((signal) => getInsights(run, signal), [run]);
}
