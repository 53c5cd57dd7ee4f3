/**
 * The one typed client of the Embedding Explorer server API (`/api/...`).
 *
 * Every non-2xx answer becomes an `ApiError` carrying the server's `detail` text, which the UI
 * shows as it is. JSON and binary answers for a run are immutable, so they are cached here.
 */
import { decodeColumn, decodeMatrix, type Matrix } from './lib/binary';

export type RenderingKind = 'image/png' | 'text/plain' | null;
export type LabelValue = string | number;

export interface LabelsInfo {
  present: boolean;
  names: string[] | null;
  values: (LabelValue | boolean | null)[];
}

export interface ColumnInfo {
  name: string;
  kind: 'categorical' | 'numeric';
  /** Categorical columns: the category of each int32 code (sorted values, as text). */
  categories: string[] | null;
}

export interface LayerInfo {
  name: string;
  dim: number;
  n_components: number;
  explained_variance_ratio: number[];
  total_variance: number;
  pca_method: string;
}

export interface RunInfo {
  id: string;
  /** Changes whenever the run's content does: part of cacheable sample URLs. */
  version: string;
  name: string;
  n_samples: number;
  model_class: string | null;
  /** Runs of one model share it (the data-set comparison pairs them); null for older servers. */
  model_fingerprint?: string | null;
  /** Differs between data sets. */
  data_fingerprint?: string | null;
  rendering_kind: RenderingKind;
  labels: LabelsInfo;
  columns: ColumnInfo[];
  layers: LayerInfo[];
}

export interface SampleRef {
  id: number;
  score: number;
  /** The label's display name (class name where known). */
  label: string | null;
}

export interface GalleryComponent {
  index: number;
  /** "PC 1", "IC 1", or the direction's name. */
  name: string;
  /** PCA only. */
  explained_variance_ratio: number | null;
  /** ICA only: excess kurtosis. */
  kurtosis?: number | null;
  /** Lowest scores, ascending. */
  low: SampleRef[];
  /** Highest scores, descending. */
  high: SampleRef[];
}

export type BasisKind = 'pca' | 'ica' | 'direction';

export interface Gallery {
  layer: string;
  /** "pca", "ica" or "dir:<id>". */
  basis: string;
  kind: BasisKind;
  /** A direction only: how far apart its two groups are (pooled standard deviations). */
  separation?: number | null;
  components: GalleryComponent[];
}

/** The components of one basis of a layer. */
export interface BasisInfo {
  layer: string;
  basis: string;
  kind: BasisKind;
  n_components: number;
  names: string[];
  explained_variance_ratio: number[] | null;
  kurtosis: number[] | null;
  separation: number | null;
}

export interface DirectionOut {
  id: string;
  /** "dir:<id>": the basis parameter that probes it. */
  basis: string;
  run: string;
  layer: string;
  name: string;
  /** null when it cannot be measured (single-sample groups) or is infinite (no spread along it). */
  separation: number | null;
  n_a: number;
  n_b: number;
  label_a: string | null;
  label_b: string | null;
}

export interface ShiftRow {
  index: number;
  name: string;
  explained_variance_ratio: number;
  smd: number | null;
  ks: number | null;
  ks_pvalue: number | null;
  wasserstein: number | null;
  mean_reference: number | null;
  mean_other: number | null;
  std_reference: number | null;
  std_other: number | null;
}

export interface DatasetShift {
  run_a: string;
  run_b: string;
  layer: string;
  layers: string[];
  n_reference: number;
  n_other: number;
  /** Largest |smd| first. */
  components: ShiftRow[];
  captured: { k: number[]; reference_components: (number | null)[]; own_components: (number | null)[] };
}

export interface DatasetHistogram {
  component: number;
  edges: number[];
  reference: number[];
  other: number[];
}

export interface DatasetExtremes {
  component: number;
  reference: { low: SampleRef[]; high: SampleRef[] };
  other: { low: SampleRef[]; high: SampleRef[] };
}

export interface QuantileSamples {
  q: number;
  value: number;
  samples: SampleRef[];
}

export interface Histogram {
  edges: number[];
  counts: number[];
  by_label: Record<string, number[]> | null;
}

export interface ScoreMatrix extends Matrix {
  components: number[];
}

export interface SampleDetail {
  id: number;
  /** Display name of the label; `label_value` is the stored value. */
  label: string | null;
  label_value: LabelValue | boolean | null;
  metadata: Record<string, unknown>;
  layer: string | null;
  scores: number[] | null;
  percentiles: number[] | null;
}

export type RenderingItem = { id: number; text: string } | { id: number; data_url: string };

export interface Renderings {
  kind: RenderingKind;
  items: RenderingItem[];
}

export interface AssociationColumn {
  name: string;
  kind: 'categorical' | 'numeric';
  /** eta squared (categorical, 0..1) or Pearson r (numeric, -1..1). */
  statistic: 'eta2' | 'r';
  /** One per component; null where undefined (e.g. a constant column). */
  values: (number | null)[];
  /** One readable sentence per component, e.g. "separates Sandal from Coat". */
  summaries: string[];
}

export interface Associations {
  layer: string;
  /** The label column first, when the run has labels. */
  columns: AssociationColumn[];
  /** Columns left out, with the reason. */
  skipped: Record<string, string>;
}

export interface PCCorrelation {
  run_a: string;
  layer_a: string;
  run_b: string;
  layer_b: string;
  /** r[i][j]: component i of A against component j of B (null where undefined). */
  r: (number | null)[][];
  ratio_a: number[];
  ratio_b: number[];
}

export interface CKATable {
  run_a: string;
  run_b: string;
  layers_a: string[];
  layers_b: string[];
  /** Linear CKA, 0..1, layers_a x layers_b. */
  cka: (number | null)[][];
}

export interface MatchedPair {
  component_a: number;
  component_b: number;
  /** |r| */
  r: number;
  sign: 1 | -1;
  ratio_a: number;
  ratio_b: number;
}

export interface MatchedComponents {
  run_a?: string;
  layer_a?: string;
  run_b?: string;
  layer_b?: string;
  pairs: MatchedPair[];
}

/** A failed API call: `detail` is the server's own explanation (or ours when it sent none). */
export class ApiError extends Error {
  readonly status: number;
  readonly detail: string;
  readonly url: string;

  constructor(status: number, detail: string, url: string) {
    super(status ? `${detail} (HTTP ${status})` : detail);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
    this.url = url;
  }
}

export function isAbortError(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

/** FastAPI's `detail`: a string, or a list of validation errors ({loc, msg}). */
export function detailText(body: unknown, fallback: string): string {
  if (body && typeof body === 'object' && 'detail' in body) {
    const d = (body as { detail: unknown }).detail;
    if (typeof d === 'string' && d) return d;
    if (Array.isArray(d) && d.length) {
      return d
        .map((e) => {
          if (e && typeof e === 'object' && 'msg' in e) {
            const loc = Array.isArray((e as { loc?: unknown }).loc) ? (e as { loc: unknown[] }).loc.slice(1).join('.') : '';
            return loc ? `${loc}: ${String((e as { msg: unknown }).msg)}` : String((e as { msg: unknown }).msg);
          }
          return JSON.stringify(e);
        })
        .join('; ');
    }
  }
  return fallback;
}

const enc = encodeURIComponent;

/** Absolute URL of an API path, relative to the page (so the UI also works behind a path prefix). */
export function apiUrl(path: string, params?: Record<string, string | number | boolean | undefined>): string {
  const url = new URL(`api/${path}`, typeof window === 'undefined' ? 'http://localhost/' : window.location.href);
  url.search = '';
  url.hash = '';
  if (params) {
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
  }
  return url.toString();
}

async function request(url: string, signal?: AbortSignal, init?: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { signal, credentials: 'same-origin', ...init });
  } catch (err) {
    if (isAbortError(err)) throw err;
    throw new ApiError(0, `Could not reach the Embedding Explorer server (${(err as Error).message}).`, url);
  }
  if (!res.ok) {
    let body: unknown = null;
    const text = await res.text().catch(() => '');
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const fallback = text && text.length < 300 && !text.trimStart().startsWith('<') ? text : res.statusText || 'Request failed';
    throw new ApiError(res.status, detailText(body, fallback), url);
  }
  return res;
}

const cache = new Map<string, Promise<unknown>>();

/** Share one request per URL; failed or aborted requests are forgotten so they can be retried. */
function cached<T>(key: string, load: () => Promise<T>): Promise<T> {
  const hit = cache.get(key);
  if (hit) return hit as Promise<T>;
  const p = load();
  cache.set(key, p);
  p.catch(() => cache.delete(key));
  return p;
}

/** Abort-aware wait on a shared promise: aborting stops the wait, not the shared request. */
function withSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new DOMException('Aborted', 'AbortError'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DOMException('Aborted', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await request(url, signal);
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiError(res.status, 'The server sent an answer that is not valid JSON.', url);
  }
}

function cachedJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  return withSignal(cached(url, () => getJson<T>(url)), signal);
}

const layerPath = (run: string, layer: string) => `runs/${enc(run)}/layers/${enc(layer)}`;

/** Each run's content version, so immutable sample URLs change when a run is recomputed. */
const runVersions = new Map<string, string>();

export async function getRuns(signal?: AbortSignal): Promise<RunInfo[]> {
  const runs = await getJson<RunInfo[]>(apiUrl('runs'), signal);
  for (const r of runs) runVersions.set(r.id, r.version);
  return runs;
}

/** `basis` is "pca" (default), "ica" or "dir:<id>": what the components are. */
const basisParam = (basis: string) => (basis === 'pca' ? undefined : basis);

export function getGallery(run: string, layer: string, n: number, signal?: AbortSignal, basis = 'pca'): Promise<Gallery> {
  return cachedJson(apiUrl(`${layerPath(run, layer)}/gallery`, { n, basis: basisParam(basis) }), signal);
}

export function getBasis(run: string, layer: string, basis: string, signal?: AbortSignal): Promise<BasisInfo> {
  return cachedJson(apiUrl(`${layerPath(run, layer)}/basis`, { basis: basisParam(basis) }), signal);
}

/**
 * Make (or find again: same groups, same id) a direction from two groups. Its id says how the
 * server makes it again (two labels: `label:<a>:<b>`; sample ids: a digest of a kept recipe),
 * so probing `basis=dir:<id>` later needs no second post.
 */
export function postDirection(
  run: string,
  layer: string,
  body: { label_a: string; label_b: string } | { ids_a: number[]; ids_b: number[] },
  signal?: AbortSignal,
): Promise<DirectionOut> {
  const url = apiUrl(`${layerPath(run, layer)}/directions`);
  const text = JSON.stringify(body);
  const load = async () => {
    const res = await request(url, undefined, { method: 'POST', body: text, headers: { 'Content-Type': 'application/json' } });
    return (await res.json()) as DirectionOut;
  };
  return withSignal(cached(`POST ${url} ${text}`, load), signal);
}

/** URL of a layer's table as a file (scores, extremes or associations; CSV or Parquet). */
export function exportUrl(run: string, layer: string, table: 'scores' | 'extremes' | 'associations', format: 'csv' | 'parquet', basis = 'pca'): string {
  return apiUrl(`${layerPath(run, layer)}/export/${table}.${format}`, { basis: basisParam(basis) });
}

/** The other data set against the reference, on the reference's components of `layer`. */
export function getDatasetShift(runA: string, runB: string, layer: string, signal?: AbortSignal): Promise<DatasetShift> {
  return cachedJson(apiUrl('compare/datasets', { run_a: runA, run_b: runB, layer }), signal);
}

export function getDatasetHistogram(runA: string, runB: string, layer: string, component: number, bins = 40, signal?: AbortSignal): Promise<DatasetHistogram> {
  return cachedJson(apiUrl('compare/datasets/histogram', { run_a: runA, run_b: runB, layer, component, bins }), signal);
}

export function getDatasetExtremes(runA: string, runB: string, layer: string, component: number, n: number, signal?: AbortSignal): Promise<DatasetExtremes> {
  return cachedJson(apiUrl('compare/datasets/extremes', { run_a: runA, run_b: runB, layer, component, n }), signal);
}

export function getQuantile(
  run: string,
  layer: string,
  component: number,
  q: number,
  n: number,
  signal?: AbortSignal,
  basis = 'pca',
): Promise<QuantileSamples> {
  return cachedJson(apiUrl(`${layerPath(run, layer)}/components/${component}/quantile`, { q, n, basis: basisParam(basis) }), signal);
}

export function getHistogram(
  run: string,
  layer: string,
  component: number,
  bins = 30,
  byLabel = true,
  signal?: AbortSignal,
  basis = 'pca',
): Promise<Histogram> {
  return cachedJson(
    apiUrl(`${layerPath(run, layer)}/components/${component}/histogram`, { bins, by_label: byLabel, basis: basisParam(basis) }),
    signal,
  );
}

/** Scores of all samples on `components`, as a row-major float32 (N, K) matrix. */
export function getScores(run: string, layer: string, components: number[], signal?: AbortSignal, basis = 'pca'): Promise<ScoreMatrix> {
  const url = apiUrl(`${layerPath(run, layer)}/scores`, { components: components.join(','), basis: basisParam(basis) });
  const load = async () => {
    const res = await request(url);
    const buffer = await res.arrayBuffer();
    try {
      return { ...decodeMatrix(buffer, res.headers.get('X-Shape')), components };
    } catch (err) {
      throw new ApiError(res.status, `Unreadable scores: ${(err as Error).message}`, url);
    }
  };
  return withSignal(cached(url, load), signal);
}

/** A per-sample column: int32 codes into `categories` (-1 = missing) or float32 values. */
export function getColumnValues(run: string, column: string, signal?: AbortSignal): Promise<Int32Array | Float32Array> {
  const url = apiUrl(`runs/${enc(run)}/columns/${enc(column)}/values`);
  const load = async () => {
    const res = await request(url);
    const buffer = await res.arrayBuffer();
    try {
      return decodeColumn(buffer, res.headers.get('X-Dtype'));
    } catch (err) {
      throw new ApiError(res.status, `Unreadable column ${JSON.stringify(column)}: ${(err as Error).message}`, url);
    }
  };
  return withSignal(cached(url, load), signal);
}

export function getSample(run: string, id: number, layer: string | null, signal?: AbortSignal): Promise<SampleDetail> {
  return cachedJson(apiUrl(`runs/${enc(run)}/samples/${id}`, { layer: layer ?? undefined }), signal);
}

/** URL of a sample's rendering (PNG thumbnail or text), cached by the browser. */
export function renderUrl(run: string, id: number): string {
  return apiUrl(`runs/${enc(run)}/samples/${id}/render`, { v: runVersions.get(run) });
}

export function getRenderings(run: string, ids: number[], signal?: AbortSignal): Promise<Renderings> {
  return getJson<Renderings>(apiUrl(`runs/${enc(run)}/renderings`, { ids: ids.join(','), v: runVersions.get(run) }), signal);
}

/** Each label and metadata column against each component of a layer. */
export function getAssociations(run: string, layer: string, signal?: AbortSignal): Promise<Associations> {
  return cachedJson(apiUrl(`${layerPath(run, layer)}/associations`), signal);
}

/** Correlations between the components of two layers (of one run, or of two runs over the same samples). */
export function getPcCorrelation(runA: string, layerA: string, layerB: string, runB?: string, signal?: AbortSignal): Promise<PCCorrelation> {
  return cachedJson(
    apiUrl('pc-correlation', { run_a: runA, layer_a: layerA, layer_b: layerB, run_b: runB && runB !== runA ? runB : undefined }),
    signal,
  );
}

/** Linear CKA between every layer of two runs (422 when they cover different samples). */
export function getCka(runA: string, runB: string, signal?: AbortSignal): Promise<CKATable> {
  return cachedJson(apiUrl('compare/cka', { run_a: runA, run_b: runB }), signal);
}

/** Components of two layers of two runs, paired by largest |r|. */
export function getMatched(runA: string, layerA: string, runB: string, layerB: string, signal?: AbortSignal): Promise<MatchedComponents> {
  return cachedJson(apiUrl('compare/matched', { run_a: runA, layer_a: layerA, run_b: runB, layer_b: layerB }), signal);
}

/** Forget cached answers (tests, or after the server's runs changed). */
export function clearCache(): void {
  cache.clear();
}
