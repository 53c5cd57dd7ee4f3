/**
 * React hooks. Views render; these fetch and keep state:
 *
 *   async.ts       useAsync: abort + stale-answer protection under every resource hook
 *   resources.ts   one hook per API answer (useGallery, useHistogram, useScatterScores, useCka, ...)
 *   quantile.ts    useQuantileSamples: the probe slider's throttled, latest-wins requests
 *   basis.ts       useBasis: PCA, ICA or a direction made on the server from two groups
 *   urlState.ts    useUrlState: the view state in the query string
 *   theme.ts       useTheme, useCssVar
 *   sidebar.ts     useSidebarOpen: the sidebar shown or hidden (kept across visits)
 *   sampleText.ts  useRendering, useSampleText: renderings (texts, thumbnails) fetched in batches
 *   filter.ts      useFilterParam, useSelection: the shared sample filter
 *   neighbors.ts   useNeighbors, useNeighborhood: a sample's nearest neighbours
 */
export { useAsync, type AsyncState } from './async';
export { useBasis, type ResolvedBasis } from './basis';
export { useFilterParam, useSelection } from './filter';
export { useNeighborhood, useNeighbors } from './neighbors';
export { useQuantileSamples, useSliderQuantile, type QuantileRequest, type QuantileState } from './quantile';
export * from './resources';
export { useRendering, useSampleText } from './sampleText';
export { useSidebarOpen } from './sidebar';
export { useCssVar, useTheme, type Theme } from './theme';
export { useUrlState, type UpdateState } from './urlState';
export { useTokenContexts, useTokenStrip, useTokenWindow } from './tokens';
