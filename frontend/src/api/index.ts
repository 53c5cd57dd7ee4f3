/**
 * The one typed client of the Embedding Explorer server API (`/api/...`).
 *
 * Types come from the server's OpenAPI schema (`schema.d.ts`, generated: `make api-types`).
 * Every non-2xx answer becomes an `ApiError` carrying the server's `detail` text, which the UI
 * shows as it is. JSON and binary answers for a run are immutable, so they are cached here.
 *
 *   types.ts       the schema's types under their UI names, and route typing helpers
 *   errors.ts      ApiError, detailText, isAbortError, isRefusal
 *   http.ts        URLs, fetch + errors, the per-URL cache, abort-aware waits
 *   runs.ts, layers.ts, compare.ts, directions.ts   the endpoints
 */
export * from './types';
export { ApiError, detailText, isAbortError, isRefusal } from './errors';
export { apiUrl, clearCache } from './http';
export { getColumnValues, getRenderings, getRuns, getRunsEarly, getSample, getSampleScores, renderUrl, spectrogramUrl } from './runs';
export { exportUrl, getAssociations, getBasis, getGallery, getHistogram, getQuantile, getScatterScores } from './layers';
export { getCka, getInsights, getDatasetExtremes, getDatasetHistogram, getDatasetShift, getMatched, getPcCorrelation } from './compare';
export { postDirection } from './directions';
export { getNeighborhood, getNeighbors, getSelection, type Selection } from './samples';
export { getTokenContexts, getTokenStrip, type TokenContext, type TokenStrip } from './tokens';
