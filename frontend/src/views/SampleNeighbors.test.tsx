// @vitest-environment happy-dom
import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { renderView, runInfo } from '../test/app';
import { sameSampleRuns, SampleNeighbors } from './SampleNeighbors';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getNeighbors: vi.fn(),
  getNeighborhood: vi.fn(),
}));

beforeEach(() => {
  vi.mocked(api.getNeighbors).mockReset().mockImplementation(async (_run, sample, layer, k, metric, space) => ({
    sample, layer, k, metric, space,
    neighbors: Array.from({ length: k }, (_, i) => ({ id: 50 + i, distance: 0.1 * (i + 1), label: 'cat' })),
  }));
  vi.mocked(api.getNeighborhood).mockReset().mockImplementation(async (_run, sample, k, metric, space, other) => ({
    sample, k, metric, space,
    layers: [{ layer: 'conv', ids: [1], overlap_previous: null }, { layer: 'fc', ids: [2], overlap_previous: 0.25 }],
    other: other ?? null,
    other_layers: other ? ['conv', 'fc'] : [],
    overlap: other ? [[1, 0.5], [0.25, 0.75]] : [],
  }));
});

describe('SampleNeighbors', () => {
  it('lists the neighbours with distances and the overlap with the layer before', async () => {
    renderView(<SampleNeighbors id={3} layer="fc" />);
    await waitFor(() => expect(screen.getAllByTestId('neighbor')).toHaveLength(8));
    expect(api.getNeighbors).toHaveBeenCalledWith('r1', 3, 'fc', 8, 'cosine', 'activations', expect.any(AbortSignal));
    expect(screen.getAllByTestId('neighbor')[0].textContent).toContain('0.100');
    await waitFor(() => expect(screen.getAllByTestId('overlap-previous').map((c) => c.textContent)).toEqual(['—', '25%']));
  });

  it('writes its choices into the URL and reads the other model from it', async () => {
    const runs = [runInfo('r1', { data_fingerprint: 'd' }), runInfo('r2', { data_fingerprint: 'd' }), runInfo('r3', { data_fingerprint: 'other' })];
    const { update } = renderView(<SampleNeighbors id={3} layer="fc" />, { runs, state: { nbOther: 'r2', nbSpace: 'scores' } });
    await waitFor(() => expect(screen.getAllByTestId('overlap-other')).toHaveLength(4));
    expect(api.getNeighborhood).toHaveBeenCalledWith('r1', 3, 8, 'cosine', 'scores', 'r2', expect.any(AbortSignal));
    const options = [...(screen.getByTestId('neighbors-other') as HTMLSelectElement).options].map((o) => o.value);
    expect(options).toEqual(['', 'r2']); // r3 holds other data
    fireEvent.change(screen.getByTestId('neighbors-metric'), { target: { value: 'euclidean' } });
    expect(update).toHaveBeenCalledWith({ nbMetric: 'euclidean' }, { replace: true });
  });

  it('pairs only runs over the same samples', () => {
    const a = runInfo('a', { data_fingerprint: 'x' });
    expect(sameSampleRuns([a, runInfo('b', { data_fingerprint: 'x' }), runInfo('c', { n_samples: 7, data_fingerprint: 'x' }), runInfo('d', { data_fingerprint: null })], a).map((r) => r.id)).toEqual(['b', 'd']);
  });
});
