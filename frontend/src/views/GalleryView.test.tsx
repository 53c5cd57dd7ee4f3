// @vitest-environment happy-dom
import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { gallery, renderView } from '../test/app';
import { GalleryView } from './GalleryView';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getGallery: vi.fn(),
  getAssociations: vi.fn(),
}));

beforeEach(() => {
  vi.mocked(api.getGallery).mockReset().mockImplementation(async (_run, layer) => gallery(layer));
  vi.mocked(api.getAssociations)
    .mockReset()
    .mockImplementation(async (_run, layer) => ({
      layer,
      columns: [{ name: 'label', kind: 'categorical', statistic: 'eta2', values: [0.9, 0.1, 0.05], summaries: ['high: dog · low: cat', '', ''] }],
      skipped: {},
    }));
});

describe('GalleryView', () => {
  it('shows one column per component with both ends, and what PC 1 reads as', async () => {
    renderView(<GalleryView />);
    await waitFor(() => expect(screen.getAllByTestId('gallery-column')).toHaveLength(3));
    expect(api.getGallery).toHaveBeenCalledWith('r1', 'conv', 8, expect.any(AbortSignal), 'pca', undefined);
    const headers = screen.getAllByTestId('component-header').map((h) => h.querySelector('.column-pc')?.textContent);
    expect(headers).toEqual(['PC 1', 'PC 2', 'PC 3']);
    expect(screen.getAllByTestId('gallery-high')[0].querySelectorAll('[data-sample-id]').length).toBe(2);
    await waitFor(() => expect(screen.getAllByTestId('component-summary')[0].textContent).toContain('high: dog · low: cat'));
  });

  it('shows the strongest association of any column beside the label one', async () => {
    vi.mocked(api.getAssociations).mockImplementation(async (_run, layer) => ({
      layer,
      columns: [
        { name: 'label', kind: 'categorical', statistic: 'eta2', values: [0.9, 0.1, 0.05], summaries: ['high: dog · low: cat', '', ''] },
        { name: 'brightness', kind: 'numeric', statistic: 'r', values: [0.2, -0.8, 0.01], summaries: ['', 'r = −0.80 with brightness', ''] },
      ],
      skipped: {},
    }));
    renderView(<GalleryView />);
    await waitFor(() => expect(screen.getAllByTestId('component-strongest')).toHaveLength(1));
    // PC 1: the label is the strongest (already shown); PC 2: brightness, |r| 0.8 > eta² 0.1
    const pc2 = screen.getAllByTestId('gallery-column')[1];
    expect(pc2.querySelector('[data-testid=component-strongest]')?.textContent).toBe('strongest: brightness r = −0.80');
    expect(screen.getAllByTestId('gallery-column')[0].querySelector('[data-testid=component-strongest]')).toBeNull();
  });

  it('asks for the extremes among the samples the shared filter keeps, and says when none is kept', async () => {
    vi.mocked(api.getGallery).mockImplementation(async (_run, layer) => ({ ...gallery(layer), components: gallery(layer).components.map((c) => ({ ...c, low: [], high: [] })) }));
    renderView(<GalleryView />, { state: { filter: { labels: ['cat'], hide: [], ranges: {}, flags: { correct: false }, query: '' } } });
    await waitFor(() => expect(screen.getByTestId('filter-empty')).toBeTruthy());
    expect(api.getGallery).toHaveBeenCalledWith('r1', 'conv', 8, expect.any(AbortSignal), 'pca', '{"labels":["cat"],"flags":{"correct":false}}');
  });

  it('shows a row per chosen layer', async () => {
    renderView(<GalleryView />, { state: { rows: ['conv', 'fc'] } });
    await waitFor(() => expect(screen.getAllByTestId('gallery-column')).toHaveLength(6));
    expect(screen.getAllByTestId('gallery-row').map((r) => r.dataset.layer)).toEqual(['conv', 'fc']);
  });

  it('opens the probe on a component header', async () => {
    const { update } = renderView(<GalleryView />);
    await waitFor(() => expect(screen.getAllByTestId('component-header')).toHaveLength(3));
    fireEvent.click(screen.getAllByTestId('component-header')[1]);
    expect(update).toHaveBeenCalledWith({ layer: 'conv', pc: 1, tab: 'probe', q: 0.5 });
  });

  it('asks for more samples per end through the URL state', async () => {
    const { update } = renderView(<GalleryView />);
    fireEvent.change(screen.getByTestId('n-input'), { target: { value: '12' } });
    expect(update).toHaveBeenCalledWith({ n: 12 }, { replace: true });
  });

  it("shows the server's error with a retry", async () => {
    vi.mocked(api.getGallery).mockRejectedValueOnce(new api.ApiError(404, "no layer 'conv'", 'u'));
    renderView(<GalleryView />);
    await waitFor(() => expect(screen.getByText(/no layer 'conv'/)).toBeTruthy());
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    await waitFor(() => expect(screen.getAllByTestId('gallery-column')).toHaveLength(3));
  });
});
