/** Around samples: which samples a filter keeps, a sample's neighbours and its neighbourhood across layers and models. */
import { readArray } from '../lib/binary';
import { ApiError } from './errors';
import { cached, getRoute, request, routeUrl, withSignal } from './http';
import type { Neighborhood, Neighbors, NeighborMetric, NeighborSpace } from './types';

/** What `/select` answers: the kept ids (ascending) and the run's size. */
export interface Selection {
  ids: Int32Array;
  total: number;
}

/** The ids of the samples `filter` keeps (the server's filter parameter; undefined: all). */
export function getSelection(run: string, filter: string | undefined, signal?: AbortSignal): Promise<Selection> {
  const url = routeUrl('runs/{run}/select', { run }, { filter });
  const load = async () => {
    const res = await request(url);
    const buffer = await res.arrayBuffer();
    try {
      return { ids: readArray(buffer, 'int32'), total: Number(res.headers.get('X-Total') ?? NaN) };
    } catch (err) {
      throw new ApiError(res.status, `Unreadable selection: ${(err as Error).message}`, url);
    }
  };
  return withSignal(cached(url, load), signal);
}

/** The `k` samples nearest `sample` in `layer`, nearest first (itself excluded). */
export function getNeighbors(run: string, sample: number, layer: string, k: number, metric: NeighborMetric, space: NeighborSpace, signal?: AbortSignal): Promise<Neighbors> {
  return getRoute('runs/{run}/samples/{sample_id}/neighbors', { run, sample_id: sample }, { layer, k, metric, space }, signal);
}

/** The sample's neighbours in every layer, their overlap layer to layer, and with `other` (a run over the same samples). */
export function getNeighborhood(run: string, sample: number, k: number, metric: NeighborMetric, space: NeighborSpace, other?: string, signal?: AbortSignal): Promise<Neighborhood> {
  return getRoute('runs/{run}/samples/{sample_id}/neighborhood', { run, sample_id: sample }, { k, metric, space, other }, signal);
}
