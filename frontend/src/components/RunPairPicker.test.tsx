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

// three models over one data set (the Models view can pair any two)
const runs = ['a', 'b', 'c'].map((id) => runInfo(id, { data_fingerprint: 'd', model_fingerprint: `m-${id}` }));
// for the Data sets view: one model over three data sets
const dataRuns = ['a', 'b', 'c'].map((id) => runInfo(id));

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

describe('pairs the server would refuse', () => {
  it('are disabled on B with the reason in plain words; a run with no partner is disabled on A', () => {
    const mixed = [runInfo('a', { data_fingerprint: 'd' }), runInfo('b', { data_fingerprint: 'd' }), runInfo('c', { data_fingerprint: 'other' }), runInfo('t', { n_samples: 7 })];
    renderView(<CompareView />, { runs: mixed });
    const optionsB = Array.from((screen.getByTestId('compare-run-b') as HTMLSelectElement).options);
    expect(optionsB.map((o) => [o.value, o.disabled, o.textContent])).toEqual([
      ['a', false, 'a'],
      ['b', false, 'b'],
      ['c', true, 'c — other samples or another order'],
      ['t', true, 't — other samples (7 vs 100)'],
    ]);
    const optionsA = Array.from((screen.getByTestId('compare-run-a') as HTMLSelectElement).options);
    expect(optionsA.filter((o) => o.disabled).map((o) => o.textContent)).toEqual(['c — nothing to compare it with', 't — nothing to compare it with']);
    // no module paths or hashes in what the picker says
    expect(optionsB.map((o) => o.textContent).join(' ')).not.toMatch(/[0-9a-f]{8}|\w+\.\w+\./);
  });

  it('opens on an accepted pair, and says so when there is none', () => {
    const { update } = renderView(<DatasetsView />, { runs, state: {} });
    // three models over one data set: nothing for the Data sets view
    expect(screen.getByTestId('datasets-no-pair').textContent).toContain('another model');
    expect(update).not.toHaveBeenCalled();
    expect(api.getDatasetShift).not.toHaveBeenCalled();
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
    const { update } = renderView(<DatasetsView />, { runs: dataRuns, state: { dsA: 'a', dsB: 'b', dsPc: 2 } });
    expect(screen.getByLabelText('Reference run (A)')).toBeTruthy();
    fireEvent.change(screen.getByTestId('datasets-run-a'), { target: { value: 'b' } });
    expect(update).toHaveBeenLastCalledWith({ dsA: 'b', dsB: 'a', dsPc: null });
    fireEvent.click(screen.getByRole('button', { name: 'Swap the reference and the other run' }));
    expect(update).toHaveBeenLastCalledWith({ dsA: 'b', dsB: 'a', dsPc: null });
    expect(screen.getByTestId('datasets-loading')).toBeTruthy();
    expect(api.getDatasetShift).toHaveBeenCalledWith('a', 'b', 'fc', expect.any(AbortSignal), undefined);
  });
});
