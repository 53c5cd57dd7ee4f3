// @vitest-environment happy-dom
import { act, fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { deferred, gallery, refs, renderView } from '../test/app';
import { ProbeView } from './ProbeView';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getGallery: vi.fn(),
  getAssociations: vi.fn(),
  getHistogram: vi.fn(),
  getQuantile: vi.fn(),
}));

const histogram = { edges: [0, 1, 2], counts: [50, 50], by_label: { cat: [30, 20], dog: [20, 30] } };

beforeEach(() => {
  vi.mocked(api.getGallery).mockReset().mockImplementation(async (_run, layer) => gallery(layer));
  vi.mocked(api.getAssociations).mockReset().mockResolvedValue({ layer: 'conv', columns: [], skipped: {} });
  vi.mocked(api.getHistogram).mockReset().mockResolvedValue(histogram);
  vi.mocked(api.getQuantile).mockReset().mockImplementation(async (_run, _layer, _c, q) => ({ q, value: q, samples: refs([Math.round(q * 100)]) }));
});

describe('ProbeView', () => {
  it('names the component, loads its histogram and the samples near the slider', async () => {
    renderView(<ProbeView />, { state: { pc: 1, q: 0.25 } });
    await waitFor(() => expect(screen.getByTestId('probe-name').textContent).toBe('PC 2'));
    expect(api.getHistogram).toHaveBeenCalledWith('r1', 'conv', 1, 30, true, expect.any(AbortSignal), 'pca', undefined);
    await waitFor(() => expect(screen.getByTestId('probe-samples').dataset.q).toBe('0.25'));
    expect(api.getQuantile).toHaveBeenCalledWith('r1', 'conv', 1, 0.25, 8, expect.any(AbortSignal), 'pca', undefined);
    expect(screen.getByTestId('probe-q').textContent).toBe('25%');
    // the extremes: lowest, near, highest
    expect(screen.getByTestId('probe-samples').querySelectorAll('[data-sample-id="25"]').length).toBe(1);
  });

  it('steps through components with the URL state', async () => {
    const { update } = renderView(<ProbeView />);
    await waitFor(() => expect(screen.getByTestId('probe-name').textContent).toBe('PC 1'));
    fireEvent.click(screen.getByRole('button', { name: 'Next component' }));
    expect(update).toHaveBeenCalledWith({ pc: 1 });
    fireEvent.click(screen.getByTestId('axis-score'));
    expect(update).toHaveBeenCalledWith({ axis: 'score' }, { replace: true });
  });

  it('never lets an old answer replace the samples of a newer slider position', async () => {
    const slow = deferred<api.QuantileSamples>();
    vi.mocked(api.getQuantile).mockImplementationOnce(() => slow.promise);
    renderView(<ProbeView />, { state: { q: 0.5 } });
    await waitFor(() => expect(api.getQuantile).toHaveBeenCalledTimes(1));
    fireEvent.change(screen.getByTestId('probe-slider'), { target: { value: '0.9' } });
    await waitFor(() => expect(screen.getByTestId('probe-samples').dataset.q).toBe('0.9'));
    // the first request was aborted; its late answer is dropped
    const firstSignal = vi.mocked(api.getQuantile).mock.calls[0][5] as AbortSignal;
    expect(firstSignal.aborted).toBe(true);
    await act(async () => slow.resolve({ q: 0.5, value: 0, samples: refs([50]) }));
    expect(screen.getByTestId('probe-samples').dataset.q).toBe('0.9');
  });

  it('writes the slider position to the URL, replacing the history entry', async () => {
    const { update } = renderView(<ProbeView />);
    fireEvent.change(screen.getByTestId('probe-slider'), { target: { value: '0.42' } });
    expect(screen.getByTestId('probe-q').textContent).toBe('42%');
    await waitFor(() => expect(update).toHaveBeenCalledWith({ q: 0.42 }, { replace: true }));
  });

  it('asks for a direction before probing one', () => {
    renderView(<ProbeView />, { state: { basis: 'dir' } });
    expect(screen.getByTestId('direction-needed')).toBeTruthy();
    expect(api.getHistogram).not.toHaveBeenCalled();
  });
});
