/** The sample view's neighbours: the distance, the space searched and the model compared with. */
import { enumParam, textParam, type Param } from './params';

export const NEIGHBOR_METRICS = ['cosine', 'euclidean'] as const;
export const NEIGHBOR_SPACES = ['activations', 'scores'] as const;

export interface NeighborsState {
  nbMetric: (typeof NEIGHBOR_METRICS)[number];
  nbSpace: (typeof NEIGHBOR_SPACES)[number];
  /** Another run over the same samples whose neighbourhoods are compared; null: none. */
  nbOther: string | null;
}

export const NEIGHBORS_DEFAULTS: NeighborsState = { nbMetric: 'cosine', nbSpace: 'activations', nbOther: null };

export const NEIGHBORS_PARAMS: Param<NeighborsState>[] = [
  enumParam('nm', 'nbMetric', NEIGHBOR_METRICS, NEIGHBORS_DEFAULTS.nbMetric),
  enumParam('ns', 'nbSpace', NEIGHBOR_SPACES, NEIGHBORS_DEFAULTS.nbSpace),
  textParam('nr', 'nbOther'),
];
