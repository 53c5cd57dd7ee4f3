/** Two layers, two runs (models over the same samples) or two data sets (one model). */
import { getRoute } from './http';
import type { CKATable, DatasetExtremes, DatasetHistogram, DatasetShift, Insights, MatchedComponents, PCCorrelation } from './types';

/** Correlations between the components of two layers (of one run, or of two runs over the same samples). */
export function getPcCorrelation(runA: string, layerA: string, layerB: string, runB?: string, signal?: AbortSignal): Promise<PCCorrelation> {
  return getRoute('pc-correlation', {}, { run_a: runA, layer_a: layerA, layer_b: layerB, run_b: runB && runB !== runA ? runB : undefined }, signal);
}

/** Linear CKA between every layer of two runs (422 when they cover different samples). */
export function getCka(runA: string, runB: string, signal?: AbortSignal): Promise<CKATable> {
  return getRoute('compare/cka', {}, { run_a: runA, run_b: runB }, signal);
}

/** Components of two layers of two runs, paired by largest |r|. */
export function getMatched(runA: string, layerA: string, runB: string, layerB: string, signal?: AbortSignal): Promise<MatchedComponents> {
  return getRoute('compare/matched', {}, { run_a: runA, layer_a: layerA, run_b: runB, layer_b: layerB }, signal);
}

/** The other data set against the reference, on the reference's components of `layer`. */
export function getDatasetShift(runA: string, runB: string, layer: string, signal?: AbortSignal, filter?: string): Promise<DatasetShift> {
  return getRoute('compare/datasets', {}, { run_a: runA, run_b: runB, layer, filter }, signal);
}

export function getDatasetHistogram(runA: string, runB: string, layer: string, component: number, bins = 40, signal?: AbortSignal, filter?: string): Promise<DatasetHistogram> {
  return getRoute('compare/datasets/histogram', {}, { run_a: runA, run_b: runB, layer, component, bins, filter }, signal);
}

export function getDatasetExtremes(runA: string, runB: string, layer: string, component: number, n: number, signal?: AbortSignal, filter?: string): Promise<DatasetExtremes> {
  return getRoute('compare/datasets/extremes', {}, { run_a: runA, run_b: runB, layer, component, n, filter }, signal);
}

/** The run's findings, strongest first, against every served run that can be compared with it. */
export function getInsights(run: string, signal?: AbortSignal): Promise<Insights> {
  return getRoute('runs/{run}/insights', { run }, undefined, signal);
}
