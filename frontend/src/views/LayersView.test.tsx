// @vitest-environment happy-dom
import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { layerInfo, renderView, runInfo } from '../test/app';
import { LayersView } from './LayersView';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getPcCorrelation: vi.fn(),
  getAssociations: vi.fn(),
}));

const run = runInfo('r1', { layers: [layerInfo('input'), layerInfo('conv'), layerInfo('fc')] });

/** r between PC i of A and PC j of B: strong on the diagonal, one negative link. */
function correlation(a: string, b: string): api.PCCorrelation {
  return {
    run_a: 'r1', layer_a: a, run_b: 'r1', layer_b: b,
    r: [[0.9, 0.1, 0.0], [0.05, -0.6, 0.1], [0.0, 0.2, 0.1]],
    ratio_a: [0.4, 0.2, 0.13], ratio_b: [0.4, 0.2, 0.13],
  };
}

beforeEach(() => {
  vi.mocked(api.getPcCorrelation).mockReset().mockImplementation(async (_run, a, b) => correlation(a, b));
  vi.mocked(api.getAssociations).mockReset().mockRejectedValue(new Error('optional'));
});

describe('LayersView', () => {
  it('links the components of neighbouring layers at the threshold', async () => {
    renderView(<LayersView />, { runs: [run] });
    await waitFor(() => expect(screen.getByTestId('link-count').dataset.count).toBe('4'));
    // two neighbouring pairs, each with |r| >= 0.3 twice (0.9 and -0.6)
    expect(vi.mocked(api.getPcCorrelation).mock.calls.map((c) => [c[1], c[2]])).toEqual(expect.arrayContaining([['input', 'conv'], ['conv', 'fc']]));
    expect(screen.getAllByTestId('corr-node')).toHaveLength(9);
    expect(screen.getAllByTestId('corr-link')).toHaveLength(4);
    expect(screen.getByTestId('threshold-value').textContent).toBe('0.30');
  });

  it('draws fewer links at a higher threshold', async () => {
    renderView(<LayersView />, { runs: [run], state: { threshold: 0.7 } });
    await waitFor(() => expect(screen.getByTestId('link-count').dataset.count).toBe('2'));
  });

  it('highlights a component and lists its links', async () => {
    const { update } = renderView(<LayersView />, { runs: [run], state: { node: { layer: 'conv', pc: 1 } } });
    await waitFor(() => expect(screen.getByTestId('node-details')).toBeTruthy());
    expect(screen.getByTestId('node-details').querySelectorAll('li')).toHaveLength(2);
    fireEvent.click(screen.getAllByTestId('corr-node').find((n) => n.dataset.layer === 'fc' && n.dataset.component === '0')!);
    expect(update).toHaveBeenCalledWith({ node: { layer: 'fc', pc: 0 } }, { replace: false });
  });

  it('hides a layer with its chip and keeps at least two', async () => {
    const { update } = renderView(<LayersView />, { runs: [run] });
    const chips = screen.getAllByTestId('layer-chip');
    fireEvent.click(chips[0]);
    expect(update).toHaveBeenCalledWith({ rows: ['conv', 'fc'], node: null });
    fireEvent.change(screen.getByTestId('threshold-input'), { target: { value: '0.5' } });
    expect(update).toHaveBeenCalledWith({ threshold: 0.5 }, { replace: true });
  });

  it('says so when the run has one layer', () => {
    renderView(<LayersView />, { runs: [runInfo('one', { layers: [layerInfo('fc')] })] });
    expect(screen.getByTestId('layers-empty')).toBeTruthy();
  });
});
