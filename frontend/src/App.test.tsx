// @vitest-environment happy-dom
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from './api';
import { App } from './App';
import { gallery, runInfo } from './test/app';

vi.mock('./api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('./api')>()),
  getRuns: vi.fn(),
  getGallery: vi.fn(),
  getAssociations: vi.fn(),
  getHistogram: vi.fn(() => new Promise(() => {})),
  getQuantile: vi.fn(() => new Promise(() => {})),
}));

beforeEach(() => {
  window.history.replaceState(null, '', '/');
  vi.mocked(api.getRuns).mockReset().mockResolvedValue([runInfo('r1')]);
  vi.mocked(api.getGallery).mockReset().mockImplementation(async (_run, layer) => gallery(layer));
  vi.mocked(api.getAssociations).mockReset().mockResolvedValue({ layer: 'conv', columns: [], skipped: {} });
});

describe('App', () => {
  it('loads the runs, shows the gallery, and switches tabs through the URL', async () => {
    render(<App />);
    await waitFor(() => expect(screen.getByTestId('run-summary').textContent).toContain('100 samples · 2 layers'));
    await waitFor(() => expect(screen.getAllByTestId('gallery-column')).toHaveLength(3));
    fireEvent.click(screen.getByTestId('tab-probe'));
    expect(window.location.search).toBe('?tab=probe');
    await waitFor(() => expect(screen.getByTestId('probe')).toBeTruthy());
  });

  it('reads the view from the URL and says when a run is missing', async () => {
    window.history.replaceState(null, '', '/?run=gone&tab=probe&pc=1');
    render(<App />);
    await waitFor(() => expect(screen.getByText('There is no run “gone”; showing “r1”.')).toBeTruthy());
    await waitFor(() => expect(screen.getByTestId('probe-name').textContent).toBe('PC 2'));
  });

  it('says when the server serves no runs, and shows a failure with a retry', async () => {
    vi.mocked(api.getRuns).mockResolvedValueOnce([]);
    const { unmount } = render(<App />);
    await waitFor(() => expect(screen.getByTestId('no-runs')).toBeTruthy());
    unmount();
    vi.mocked(api.getRuns).mockRejectedValueOnce(new api.ApiError(0, 'Could not reach the Embedding Explorer server (down).', 'u'));
    render(<App />);
    await waitFor(() => expect(screen.getByText(/Could not reach/)).toBeTruthy());
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    await waitFor(() => expect(screen.getByTestId('run-summary')).toBeTruthy());
  });
});
