// @vitest-environment happy-dom
import { act, renderHook, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { deferred, gallery } from '../test/app';
import { useGallery, useScatterScores } from './resources';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getGallery: vi.fn(),
  getScatterScores: vi.fn(),
}));

beforeEach(() => {
  vi.mocked(api.getGallery).mockReset();
  vi.mocked(api.getScatterScores).mockReset();
});

describe('resource hooks', () => {
  it('abort the old request and drop its late answer', async () => {
    const first = deferred<api.Gallery>();
    const second = deferred<api.Gallery>();
    vi.mocked(api.getGallery).mockReturnValueOnce(first.promise).mockReturnValueOnce(second.promise);
    const { result, rerender } = renderHook(({ layer }) => useGallery('r', layer, 8, 'pca'), { initialProps: { layer: 'conv' } });
    expect(result.current.loading).toBe(true);
    rerender({ layer: 'fc' });
    const firstSignal = vi.mocked(api.getGallery).mock.calls[0][3] as AbortSignal;
    expect(firstSignal.aborted).toBe(true);
    await act(async () => second.resolve(gallery('fc')));
    expect(result.current.data?.layer).toBe('fc');
    await act(async () => first.resolve(gallery('conv')));
    expect(result.current.data?.layer).toBe('fc');
    expect(result.current.loading).toBe(false);
  });

  it('keep the previous answer while the next loads when asked to', async () => {
    const next = deferred<api.Gallery>();
    vi.mocked(api.getGallery).mockResolvedValueOnce(gallery('conv')).mockReturnValueOnce(next.promise);
    const { result, rerender } = renderHook(({ n }) => useGallery('r', 'conv', n, 'pca', true), { initialProps: { n: 8 } });
    await waitFor(() => expect(result.current.data?.layer).toBe('conv'));
    rerender({ n: 12 });
    expect(result.current.loading).toBe(true);
    expect(result.current.data?.layer).toBe('conv');
  });

  it('load nothing without a basis, and report errors with a retry', async () => {
    const { result: idle } = renderHook(() => useGallery('r', 'conv', 8, null));
    expect(idle.current).toMatchObject({ data: null, loading: false, error: null });
    expect(api.getGallery).not.toHaveBeenCalled();

    vi.mocked(api.getScatterScores).mockRejectedValueOnce(new api.ApiError(500, 'boom', 'u'));
    vi.mocked(api.getScatterScores).mockResolvedValueOnce({ rows: 1, cols: 1, codes: new Uint16Array([1]), bounds: [[0, 1]], components: [0] });
    const components = [0];
    const { result } = renderHook(() => useScatterScores('r', 'conv', components, 'pca'));
    await waitFor(() => expect(result.current.error?.message).toBe('boom (HTTP 500)'));
    act(() => result.current.retry());
    await waitFor(() => expect(result.current.data?.rows).toBe(1));
    expect(result.current.error).toBeNull();
  });
});
