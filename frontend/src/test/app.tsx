/**
 * Component-test helpers: a small run, and `renderView` that mounts a view inside the app's
 * context with an `update` spy instead of the URL. Tests mock the API client (`vi.mock('../api')`)
 * and run in happy-dom (`// @vitest-environment happy-dom` at the top of the test file).
 */
import { cleanup, render, type RenderResult } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, vi } from 'vitest';
import type { Gallery, GalleryComponent, LayerInfo, RunInfo, SampleRef } from '../api';
import { AppContext, type AppContextValue } from '../context';
import { labelOrder } from '../lib/runInfo';
import { DEFAULT_STATE, type ViewState } from '../lib/urlState';

afterEach(() => cleanup());

// tests mock the API client: a request that still reaches `fetch` is a mistake, not a network call
globalThis.fetch = (async (input: RequestInfo | URL) => {
  throw new Error(`unmocked request in a component test: ${String(input)}`);
}) as typeof fetch;

// happy-dom has no ResizeObserver: sizes stay 0, so charts show their skeletons
if (typeof globalThis.ResizeObserver === 'undefined') {
  globalThis.ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver;
}

export function layerInfo(name: string, k = 3): LayerInfo {
  return { name, dim: 16, n_components: k, explained_variance_ratio: Array.from({ length: k }, (_, i) => 0.4 / (i + 1)), total_variance: 1, pca_method: 'covariance' };
}

export function runInfo(id: string, overrides: Partial<RunInfo> = {}): RunInfo {
  return {
    id,
    version: 'v1',
    name: id,
    n_samples: 100,
    per_token: false,
    model_class: 'Net',
    model_fingerprint: 'm1',
    data_fingerprint: `d-${id}`,
    rendering_kind: 'image/png',
    labels: { present: true, names: ['cat', 'dog'], values: [0, 1] },
    columns: [
      { name: 'label', kind: 'categorical', categories: ['0', '1'], source: 'label' },
      { name: 'brightness', kind: 'numeric', categories: null, source: 'input_statistic' },
    ],
    layers: [layerInfo('conv'), layerInfo('fc')],
    ...overrides,
  };
}

export function refs(ids: number[], label: string | null = 'cat'): SampleRef[] {
  return ids.map((id, i) => ({ id, score: 10 - i, label }));
}

export function component(index: number, n = 2): GalleryComponent {
  return { index, name: `PC ${index + 1}`, explained_variance_ratio: 0.4 / (index + 1), low: refs(Array.from({ length: n }, (_, i) => 100 + i)), high: refs(Array.from({ length: n }, (_, i) => i)) };
}

export function gallery(layer: string, k = 3, basis = 'pca'): Gallery {
  return { layer, basis, kind: 'pca', separation: null, components: Array.from({ length: k }, (_, i) => component(i)) };
}

export interface ViewHarness extends RenderResult {
  update: ReturnType<typeof vi.fn>;
  openSample: ReturnType<typeof vi.fn>;
  openLightbox: ReturnType<typeof vi.fn>;
  ctx: AppContextValue;
}

/** Mount `view` with the app's context: `state` over the defaults, `runs` (the first is current). */
export function renderView(view: ReactNode, { state = {}, runs = [runInfo('r1')] }: { state?: Partial<ViewState>; runs?: RunInfo[] } = {}): ViewHarness {
  const run = runs[0];
  const update = vi.fn();
  const openSample = vi.fn();
  const openLightbox = vi.fn();
  const ctx: AppContextValue = {
    runs,
    run,
    layer: run.layers.find((l) => l.name === state.layer) ?? run.layers[0],
    labels: labelOrder(run),
    state: { ...DEFAULT_STATE, ...state },
    update,
    theme: 'light',
    openSample,
    openLightbox,
  };
  const result = render(<AppContext.Provider value={ctx}>{view}</AppContext.Provider>);
  return { ...result, update, openSample, openLightbox, ctx };
}

/** A promise and the functions that settle it, for answers that arrive when a test says so. */
export function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
