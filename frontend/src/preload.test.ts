import { afterEach, describe, expect, it, vi } from 'vitest';
import { clearCache, getColumnValues, getRuns, getScatterScores } from './api';
import { preloadFor } from './preload';
import { runInfo } from './test/app';

/** A server of one run of 3 samples; each request it answers is listed in `calls`. */
function fakeServer() {
  const calls: string[] = [];
  const fetchMock = vi.fn(async (input: string) => {
    const url = new URL(input);
    calls.push(`${url.pathname}${url.search}`);
    if (url.pathname === '/api/runs') return new Response(JSON.stringify([runInfo('r', { n_samples: 3 })]));
    if (url.pathname.endsWith('/scores')) {
      const codes = new Uint16Array([0, 65534, 32767, 32767, 65534, 0]);
      return new Response(codes.buffer, { headers: { 'X-Shape': '3,2', 'X-Bounds': '-1,1,0,4' } });
    }
    if (url.pathname.endsWith('/values')) return new Response(new Int32Array([1, 0, 1]).buffer, { headers: { 'X-Dtype': 'int32' } });
    return new Response('{"detail": "no such route"}', { status: 404 });
  });
  vi.stubGlobal('fetch', fetchMock);
  return calls;
}

afterEach(() => {
  vi.unstubAllGlobals();
  clearCache();
});

describe('preloadFor', () => {
  it('asks for the scatter scores, the run list and the colour column before the app renders', async () => {
    const calls = fakeServer();
    preloadFor('?run=r&layer=fc&tab=scatter&x=2&y=0');
    await vi.waitFor(() => expect(calls).toHaveLength(3));
    expect(calls).toEqual(['/api/runs/r/layers/fc/scores?components=2%2C0&dtype=uint16', '/api/runs', '/api/runs/r/columns/label/values']);
    // the app's own requests take the answers over: nothing is asked twice
    const scores = await getScatterScores('r', 'fc', [2, 0]);
    expect([scores.rows, scores.cols, scores.bounds]).toEqual([3, 2, [[-1, 1], [0, 4]]]);
    expect((await getRuns()).map((r) => r.id)).toEqual(['r']);
    expect(Array.from(await getColumnValues('r', 'label'))).toEqual([1, 0, 1]);
    expect(calls).toHaveLength(3);
    // ... only the first time: a later run list is asked for again
    await getRuns();
    expect(calls.slice(3)).toEqual(['/api/runs']);
  });

  it('colours by the column the link names, and asks for ICA scores on the ICA basis', async () => {
    const calls = fakeServer();
    preloadFor('?run=r&layer=fc&tab=scatter&basis=ica&color=brightness');
    await vi.waitFor(() => expect(calls).toHaveLength(3));
    expect(calls).toContain('/api/runs/r/layers/fc/scores?components=0%2C1&basis=ica&dtype=uint16');
    expect(calls).toContain('/api/runs/r/columns/brightness/values');
  });

  it('asks for nothing on another view or without a named run and layer', async () => {
    const calls = fakeServer();
    preloadFor('?run=r&layer=fc&tab=gallery');
    preloadFor('?tab=scatter');
    preloadFor('?run=r&tab=scatter');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls).toEqual([]);
  });
});
