import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, clearCache, getGallery, postDirection } from '.';

const DIRECTION = { id: 'abc123', basis: 'dir:abc123', run: 'r', layer: 'fc', name: 'cat → dog', separation: null, n_a: 1, n_b: 1, label_a: 'cat', label_b: 'dog' };
const GALLERY = { layer: 'fc', basis: 'dir:abc123', kind: 'direction', separation: null, components: [] };

/** A server that no longer knows its direction after `restart()`. */
function fakeServer() {
  let known = false;
  const calls: string[] = [];
  const fetchMock = vi.fn(async (input: string, init?: RequestInit) => {
    const url = new URL(input);
    calls.push(`${init?.method ?? 'GET'} ${url.pathname}${url.search}`);
    if (init?.method === 'POST') {
      expect(JSON.parse(String(init.body))).toEqual({ label_a: 'cat', label_b: 'dog' });
      known = true;
      return new Response(JSON.stringify(DIRECTION), { status: 200 });
    }
    if (url.searchParams.get('basis') === 'dir:abc123' && !known) {
      return new Response(JSON.stringify({ detail: "no direction 'abc123' on this server" }), { status: 404 });
    }
    return new Response(JSON.stringify(GALLERY), { status: 200 });
  });
  return { fetchMock, calls, restart: () => (known = false) };
}

afterEach(() => {
  vi.unstubAllGlobals();
  clearCache();
});

describe('a direction', () => {
  it('is posted once: probing it later never posts its groups again', async () => {
    const server = fakeServer();
    vi.stubGlobal('fetch', server.fetchMock);
    const made = await postDirection('r', 'fc', { label_a: 'cat', label_b: 'dog' });
    expect(made.basis).toBe('dir:abc123');
    server.restart(); // a server that cannot make it again answers 404, and that is what the view shows
    const err = await getGallery('r', 'fc', 8, undefined, made.basis).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(404);
    expect(server.calls).toEqual([
      'POST /api/runs/r/layers/fc/directions',
      'GET /api/runs/r/layers/fc/gallery?n=8&basis=dir%3Aabc123',
    ]);
  });

  it('stays a 404 when this page never made it', async () => {
    const server = fakeServer();
    vi.stubGlobal('fetch', server.fetchMock);
    const err = await getGallery('r', 'fc', 8, undefined, 'dir:abc123').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(404);
    expect(server.calls).toHaveLength(1);
  });
});
