import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, clearCache, getSelection } from '.';

/** A server whose `/select` answers `body` (the kept ids) of a run of 10 samples. */
function serve(body: ArrayBuffer) {
  vi.stubGlobal(
    'fetch',
    vi.fn(async () => new Response(body, { headers: { 'X-Dtype': 'int32', 'X-Total': '10' } })),
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
  clearCache();
});

describe('getSelection', () => {
  it('reads the kept ids as int32 and the run size', async () => {
    serve(new Int32Array([1, 4, 9]).buffer);
    const kept = await getSelection('r', undefined);
    expect(kept.ids).toBeInstanceOf(Int32Array);
    expect([Array.from(kept.ids), kept.total]).toEqual([[1, 4, 9], 10]);
  });

  it('says which answer it could not read, and why', async () => {
    serve(new ArrayBuffer(6));
    const err = await getSelection('r', '{"labels": ["a"]}').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as Error).message).toMatch(/Unreadable selection: binary answer of 6 bytes is not a whole number of 4-byte int32 values/);
  });
});
