/** Runs, their per-sample columns, samples and renderings. */
import { decodeColumn } from '../lib/binary';
import { ApiError } from './errors';
import { basisParam, cached, getJson, getRoute, request, routeUrl, withSignal } from './http';
import type { Renderings, RunInfo, SampleDetail } from './types';

/** Each run's content version, so immutable sample URLs change when a run is recomputed. */
const runVersions = new Map<string, string>();

/** The run list asked for before the app's code ran (`getRunsEarly`), until the app takes it. */
let early: Promise<RunInfo[]> | null = null;

export async function getRuns(signal?: AbortSignal): Promise<RunInfo[]> {
  if (early) {
    const asked = early;
    early = null;
    return withSignal(asked, signal);
  }
  const runs = await getJson<RunInfo[]>(routeUrl('runs', {}), signal);
  for (const r of runs) runVersions.set(r.id, r.version);
  return runs;
}

/** The run list, asked for while the app's code loads (preload.ts); the app's first `getRuns` answers with it. */
export function getRunsEarly(): Promise<RunInfo[]> {
  early = getRuns();
  return early;
}

/** A per-sample column: int32 codes into `categories` (-1 = missing) or float32 values. */
export function getColumnValues(run: string, column: string, signal?: AbortSignal): Promise<Int32Array | Float32Array> {
  const url = routeUrl('runs/{run}/columns/{name}/values', { run, name: column });
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

export function getSample(run: string, id: number, layer: string | null, signal?: AbortSignal, basis = 'pca'): Promise<SampleDetail> {
  return getRoute('runs/{run}/samples/{sample_id}', { run, sample_id: id }, { layer: layer ?? undefined, basis: basisParam(basis) }, signal);
}

/** A sample's scores on `layer` along `basis`, not kept in the shared cache and cancelled with
 * `signal` (a hover over a million points asks for many samples, each once). */
export async function getSampleScores(run: string, id: number, layer: string, basis: string, signal?: AbortSignal): Promise<number[] | null> {
  const url = routeUrl('runs/{run}/samples/{sample_id}', { run, sample_id: id }, { layer, basis: basisParam(basis) });
  return (await getJson<SampleDetail>(url, signal)).scores;
}

/** URL of a sample's rendering (PNG thumbnail or text), cached by the browser. */
export function renderUrl(run: string, id: number): string {
  return routeUrl('runs/{run}/samples/{sample_id}/render', { run, sample_id: id }, undefined, { v: runVersions.get(run) });
}

/** An audio sample's spectrogram as a PNG (its clip is at `renderUrl`). */
export function spectrogramUrl(run: string, id: number): string {
  return routeUrl('runs/{run}/samples/{sample_id}/render', { run, sample_id: id }, { spectrogram: true }, { v: runVersions.get(run) });
}

export function getRenderings(run: string, ids: number[], signal?: AbortSignal): Promise<Renderings> {
  return getJson<Renderings>(routeUrl('runs/{run}/renderings', { run }, { ids: ids.join(',') }, { v: runVersions.get(run) }), signal);
}
