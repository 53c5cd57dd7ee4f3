/** A sample's nearest neighbours in a layer, and its neighbourhood across layers and models. */
import { getNeighborhood, getNeighbors, type NeighborMetric, type NeighborSpace } from '../api';
import { useAsync } from './async';

export function useNeighbors(run: string, sample: number, layer: string, k: number, metric: NeighborMetric, space: NeighborSpace) {
  return useAsync((signal) => getNeighbors(run, sample, layer, k, metric, space, signal), [run, sample, layer, k, metric, space], true);
}

export function useNeighborhood(run: string, sample: number, k: number, metric: NeighborMetric, space: NeighborSpace, other: string | null) {
  return useAsync((signal) => getNeighborhood(run, sample, k, metric, space, other ?? undefined, signal), [run, sample, k, metric, space, other], true);
}
