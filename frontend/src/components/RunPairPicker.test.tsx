// @vitest-environment happy-dom
import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { renderView, runInfo } from '../test/app';
import { CompareView } from '../views/CompareView';
import { DatasetsView } from '../views/DatasetsView';
import { RunPairPicker } from './RunPairPicker';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getCka: vi.fn(),
  getMatched: vi.fn(() => new Promise(() => {})),
  getGallery: vi.fn(() => new Promise(() => {})),
  getDatasetShift: vi.fn(),
  getDatasetHistogram: vi.fn(),
  getDatasetExtremes: vi.fn(),
}));

const runs = [runInfo('a'), runInfo('b'), runInfo('c')];

beforeEach(() => {
  vi.mocked(api.getCka).mockReset().mockResolvedValue({ run_a: 'a', run_b: 'b', layers_a: ['conv', 'fc'], layers_b: ['conv', 'fc'], cka: [[0.9, 0.2], [0.3, 0.8]] });
  vi.mocked(api.getDatasetShift).mockReset().mockReturnValue(new Promise(() => {}));
});

describe('RunPairPicker', () => {
  function pick(a = 'a', b = 'b') {
    const onChange = vi.fn();
    renderView(<RunPairPicker runs={runs} a={a} b={b} onChange={onChange} testIdPrefix="t" ariaA="Run A" ariaB="Run B" swapTitle="Swap" swapAria="Swap runs" />, { runs });
    return onChange;
  }

  it('picks a new run for either side', () => {
    const onChange = pick();
    fireEvent.change(screen.getByTestId('t-run-a'), { target: { value: 'c' } });
    expect(onChange).toHaveBeenLastCalledWith('c', 'b', 'a');
    fireEvent.change(screen.getByTestId('t-run-b'), { target: { value: 'c' } });
    expect(onChange).toHaveBeenLastCalledWith('a', 'c', 'b');
  });

  it("swaps when one side picks the other side's run, and on the swap button", () => {
    const onChange = pick();
    fireEvent.change(screen.getByTestId('t-run-a'), { target: { value: 'b' } });
    expect(onChange).toHaveBeenLastCalledWith('b', 'a', 'a');
    fireEvent.change(screen.getByTestId('t-run-b'), { target: { value: 'a' } });
    expect(onChange).toHaveBeenLastCalledWith('b', 'a', 'b');
    fireEvent.click(screen.getByRole('button', { name: 'Swap runs' }));
    expect(onChange).toHaveBeenLastCalledWith('b', 'a', 'swap');
  });
});

describe('the Models view picker', () => {
  it('resets the opened cell on a new run, and swaps it with the runs', async () => {
    const { update } = renderView(<CompareView />, { runs, state: { cellA: 'conv', cellB: 'fc', pair: 1 } });
    await waitFor(() => expect(screen.getAllByTestId('cka-cell')).toHaveLength(4));
    expect((screen.getByTestId('compare-run-a') as HTMLSelectElement).value).toBe('a');
    fireEvent.change(screen.getByTestId('compare-run-b'), { target: { value: 'c' } });
    expect(update).toHaveBeenLastCalledWith({ runA: 'a', runB: 'c', cellA: null, cellB: null, pair: null });
    fireEvent.click(screen.getByRole('button', { name: 'Swap runs A and B' }));
    expect(update).toHaveBeenLastCalledWith({ runA: 'b', runB: 'a', cellA: 'fc', cellB: 'conv', pair: null });
  });
});

describe('the Data sets view picker', () => {
  it('picks the reference and the other run, closing the opened component', () => {
    const { update } = renderView(<DatasetsView />, { runs, state: { dsA: 'a', dsB: 'b', dsPc: 2 } });
    expect(screen.getByLabelText('Reference run (A)')).toBeTruthy();
    fireEvent.change(screen.getByTestId('datasets-run-a'), { target: { value: 'b' } });
    expect(update).toHaveBeenLastCalledWith({ dsA: 'b', dsB: 'a', dsPc: null });
    fireEvent.click(screen.getByRole('button', { name: 'Swap the reference and the other run' }));
    expect(update).toHaveBeenLastCalledWith({ dsA: 'b', dsB: 'a', dsPc: null });
    expect(screen.getByTestId('datasets-loading')).toBeTruthy();
    expect(api.getDatasetShift).toHaveBeenCalledWith('a', 'b', 'fc', expect.any(AbortSignal));
  });
});
