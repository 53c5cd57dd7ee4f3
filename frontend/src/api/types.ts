/**
 * The API's types, taken from the generated `schema.d.ts` (OpenAPI of the server), so the UI and
 * the server share one contract. Regenerate with `make api-types` after changing the server.
 *
 * Only what the schema cannot say lives here: unions the UI narrows on and decoded binary answers.
 */
import type { ScoreCodes } from '../lib/binary';
import type { components, paths } from './schema';

type Schemas = components['schemas'];

export type RunInfo = Schemas['RunInfo'];
export type LabelsInfo = Schemas['LabelsInfo'];
export type ColumnInfo = Schemas['ColumnInfo'];
export type LayerInfo = Schemas['LayerInfo'];
export type SampleRef = Schemas['SampleRef'];
export type GalleryComponent = Schemas['ComponentGallery'];
export type Gallery = Schemas['Gallery'];
export type BasisInfo = Schemas['BasisInfo'];
export type DirectionIn = Schemas['DirectionIn'];
export type DirectionOut = Schemas['DirectionOut'];
export type ShiftRow = Schemas['ShiftRow'];
export type DatasetShift = Schemas['DatasetShift'];
export type DatasetHistogram = Schemas['DatasetHistogram'];
export type DatasetExtremes = Schemas['DatasetExtremes'];
export type QuantileSamples = Schemas['QuantileSamples'];
export type Histogram = Schemas['HistogramOut'];
export type SampleDetail = Schemas['SampleDetail'];
export type Renderings = Schemas['Renderings'];
export type RenderingItem = Schemas['TextItem'] | Schemas['ImageItem'];
export type AssociationColumn = Schemas['AssociationColumn'];
export type Associations = Schemas['Associations'];
export type PCCorrelation = Schemas['PCCorrelation'];
export type CKATable = Schemas['CKATable'];
export type MatchedPair = Schemas['MatchedPair'];
export type MatchedComponents = Schemas['MatchedComponents'];
export type Neighbors = Schemas['Neighbors'];
export type Neighborhood = Schemas['Neighborhood'];
export type NeighborMetric = Neighbors['metric'];
export type NeighborSpace = Neighbors['space'];
export type Insight = Schemas['Insight'];
export type Insights = Schemas['Insights'];

export type RenderingKind = RunInfo['rendering_kind'];
export type BasisKind = Gallery['kind'];
export type LabelValue = string | number;

/** Scores of all samples on some components, quantised to 16 bits for drawing (exact ones: a sample's detail). */
export interface ScatterScores extends ScoreCodes {
  components: number[];
}

// ---- routes: a path template, its path parameters, its query, its JSON answer -----------------

/** The API's GET paths, without the `/api/` prefix (`runs/{run}/layers/{layer}/gallery`). */
export type ApiPath = {
  [P in keyof paths]: P extends `/api/${infer R}` ? (paths[P] extends { get: unknown } ? R : never) : never;
}[keyof paths];

type Get<P extends ApiPath> = paths[`/api/${P}`] extends { get: infer G } ? G : never;

/** The query parameters of a path (none: `never`). */
export type QueryOf<P extends ApiPath> = Get<P> extends { parameters: { query?: infer Q } } ? Q : never;

/** The path parameters of a path (`{run: string; layer: string}`). */
export type PathParamsOf<P extends ApiPath> = Get<P> extends { parameters: { path: infer A } } ? A : Record<string, never>;

/** What a path answers with status 200, as JSON. */
export type JsonOf<P extends ApiPath> = Get<P> extends { responses: { 200: { content: { 'application/json': infer T } } } } ? T : never;
