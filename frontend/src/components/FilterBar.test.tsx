// @vitest-environment happy-dom
import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { NO_FILTER } from '../lib/filter';
import { renderView, runInfo } from '../test/app';
import { FilterBar } from './FilterBar';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getSelection: vi.fn(),
}));

beforeEach(() => {
  vi.mocked(api.getSelection).mockReset().mockResolvedValue({ ids: new Int32Array([1, 4, 9]), total: 100 });
});

const withCorrect = runInfo('r1', {
  columns: [
    { name: 'label', kind: 'categorical', categories: ['0', '1'], source: 'label' },
    { name: 'brightness', kind: 'numeric', categories: null, source: 'input_statistic' },
    { name: 'correct', kind: 'categorical', categories: ['False', 'True'], source: 'output' },
  ],
});

describe('FilterBar', () => {
  it('isolates a label on click and hides one with its eye', () => {
    const { update } = renderView(<FilterBar />);
    const chips = screen.getAllByTestId('filter-label');
    expect(chips.map((c) => c.dataset.label)).toEqual(['0', '1']);
    fireEvent.click(chips[1]);
    expect(update).toHaveBeenLastCalledWith({ filter: { ...NO_FILTER, labels: ['1'] } }, { replace: true });
    fireEvent.click(screen.getAllByTestId('filter-label-hide')[0]);
    expect(update).toHaveBeenLastCalledWith({ filter: { ...NO_FILTER, hide: ['0'] } }, { replace: true });
    expect(api.getSelection).not.toHaveBeenCalled(); // no filter: nothing to count
    expect(screen.getByTestId('filter-count').textContent).toBe('all 100 samples');
  });

  it('offers "misclassified only" where a boolean correct column exists, and counts the kept samples', async () => {
    const { update } = renderView(<FilterBar />, { runs: [withCorrect], state: { filter: { ...NO_FILTER, query: 'x' } } });
    fireEvent.click(screen.getByTestId('filter-misclassified'));
    expect(update).toHaveBeenLastCalledWith({ filter: { ...NO_FILTER, query: 'x', flags: { correct: false } } }, { replace: true });
    await waitFor(() => expect(screen.getByTestId('filter-count').textContent).toBe('3 of 100 samples'));
    expect(api.getSelection).toHaveBeenCalledWith('r1', '{"query":"x"}', expect.any(AbortSignal));
  });

  it('has no misclassified toggle without a correct column', () => {
    renderView(<FilterBar />);
    expect(screen.queryByTestId('filter-misclassified')).toBeNull();
  });
});
