/** The filter slice: one sample filter shared by the gallery, probe, scatter and data-set views, in `f`. */
import { decodeFilter, filterParam, NO_FILTER, type SampleFilter } from '../filter';
import { param, type Param } from './params';

export interface FilterState {
  filter: SampleFilter;
}

export const FILTER_DEFAULTS: FilterState = { filter: NO_FILTER };

export const FILTER_PARAMS: Param<FilterState>[] = [
  param<FilterState, 'filter'>(
    'f',
    'filter',
    (p) => decodeFilter(p.get('f')),
    (f, p) => {
      const text = filterParam(f);
      if (text) p.set('f', text);
    },
  ),
];
