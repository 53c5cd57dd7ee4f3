/** One layer of a run along a basis: gallery, probing, scores, associations, exports. */
import { ApiError } from './errors';
import { basisParam, cached, getRoute, request, routeUrl, withSignal } from './http';
import type { Associations, BasisInfo, Gallery, Histogram, QuantileSamples, ScatterScores } from './types';
import { decodeScoreCodes } from '../lib/binary';

/** `filter`: the server's filter parameter (`filterParam` of lib/filter), undefined for none. */
export function getGallery(run: string, layer: string, n: number, signal?: AbortSignal, basis = 'pca', filter?: string): Promise<Gallery> {
  return getRoute('runs/{run}/layers/{layer}/gallery', { run, layer }, { n, basis: basisParam(basis), filter }, signal);
}

export function getBasis(run: string, layer: string, basis: string, signal?: AbortSignal): Promise<BasisInfo> {
  return getRoute('runs/{run}/layers/{layer}/basis', { run, layer }, { basis: basisParam(basis) }, signal);
}

/** URL of a layer's table as a file (scores, extremes or associations; CSV or Parquet). */
export function exportUrl(run: string, layer: string, table: 'scores' | 'extremes' | 'associations', format: 'csv' | 'parquet', basis = 'pca', filter?: string): string {
  return routeUrl('runs/{run}/layers/{layer}/export/{table}.{fmt}', { run, layer, table, fmt: format }, { basis: basisParam(basis), filter });
}

export function getQuantile(
  run: string,
  layer: string,
  component: number,
  q: number,
  n: number,
  signal?: AbortSignal,
  basis = 'pca',
  filter?: string,
): Promise<QuantileSamples> {
  return getRoute('runs/{run}/layers/{layer}/components/{c}/quantile', { run, layer, c: component }, { q, n, basis: basisParam(basis), filter }, signal);
}

export function getHistogram(
  run: string,
  layer: string,
  component: number,
  bins = 30,
  byLabel = true,
  signal?: AbortSignal,
  basis = 'pca',
  filter?: string,
): Promise<Histogram> {
  return getRoute(
    'runs/{run}/layers/{layer}/components/{c}/histogram',
    { run, layer, c: component },
    { bins, by_label: byLabel, basis: basisParam(basis), filter },
    signal,
  );
}

/**
 * Scores of all samples on `components`, quantised to 16 bits a value for drawing (half the
 * bytes of float32; each within 1/131068 of its column's range): a row-major (N, K) code matrix.
 */
export function getScatterScores(run: string, layer: string, components: number[], signal?: AbortSignal, basis = 'pca'): Promise<ScatterScores> {
  const url = routeUrl('runs/{run}/layers/{layer}/scores', { run, layer }, { components: components.join(','), basis: basisParam(basis), dtype: 'uint16' });
  const load = async () => {
    const res = await request(url);
    const buffer = await res.arrayBuffer();
    try {
      const scores = { ...decodeScoreCodes(buffer, res.headers.get('X-Shape'), res.headers.get('X-Bounds')), components };
      performance.mark?.('ee:scatter-scores');
      return scores;
    } catch (err) {
      throw new ApiError(res.status, `Unreadable scores: ${(err as Error).message}`, url);
    }
  };
  return withSignal(cached(url, load), signal);
}

/** Each label and metadata column against each component of a layer. */
export function getAssociations(run: string, layer: string, signal?: AbortSignal): Promise<Associations> {
  return getRoute('runs/{run}/layers/{layer}/associations', { run, layer }, undefined, signal);
}
