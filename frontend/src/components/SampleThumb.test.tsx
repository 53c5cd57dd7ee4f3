// @vitest-environment happy-dom
import { screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { refs, renderView, runInfo } from '../test/app';
import { ThumbGrid } from './SampleThumb';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getRenderings: vi.fn(),
}));

beforeEach(() => {
  vi.mocked(api.getRenderings).mockReset();
});

describe('thumbnails', () => {
  it('come in one batched request, with a neutral placeholder until then', async () => {
    let settle: (ids: number[]) => void = () => {};
    vi.mocked(api.getRenderings).mockImplementation(
      () => new Promise((resolve) => (settle = (got) => resolve({ kind: 'image/png', items: got.map((id) => ({ id, data_url: `data:image/png;base64,${id}` })) }))),
    );
    const run = runInfo('batch-run');
    renderView(<ThumbGrid samples={refs([11, 12, 13, 14, 15, 16])} testId="grid" />, { runs: [run] });
    await waitFor(() => expect(api.getRenderings).toHaveBeenCalledTimes(1));
    expect(vi.mocked(api.getRenderings).mock.calls[0][1]).toEqual([11, 12, 13, 14, 15, 16]);
    // loading: a placeholder, not an <img> (an unloaded <img> was a black square)
    expect(screen.getByTestId('grid').querySelectorAll('img')).toHaveLength(0);
    expect(screen.getByTestId('grid').querySelectorAll('.thumb-placeholder.is-loading')).toHaveLength(6);
    settle([11, 12, 13, 14, 15]); // 16 is missing from the answer
    await waitFor(() => expect(screen.getByTestId('grid').querySelectorAll('img')).toHaveLength(5));
    expect(screen.getByTestId('grid').querySelector('img')?.getAttribute('src')).toBe('data:image/png;base64,11');
    expect(screen.getByTestId('grid').querySelector('[data-sample-id="16"]')?.textContent).toBe('#16');
  });

  it('of texts show the text on hover and pass their list on click', async () => {
    vi.mocked(api.getRenderings).mockImplementation(async (_run, ids) => ({ kind: 'text/plain', items: ids.map((id) => ({ id, text: `Note ${id}\nbody of note ${id}` })) }));
    const run = runInfo('text-run', { rendering_kind: 'text/plain' });
    const { openSample } = renderView(<ThumbGrid samples={refs([3, 4])} testId="grid" />, { runs: [run] });
    await waitFor(() => expect(screen.getByTestId('grid').textContent).toContain('Note 3'));
    const thumb = screen.getByTestId('grid').querySelector('[data-sample-id="4"]') as HTMLElement;
    expect(thumb.title).toContain('body of note 4');
    thumb.click();
    expect(openSample).toHaveBeenCalledWith(4, [3, 4]);
  });

  it('of audio show the spectrogram with a play button that does not open the sample', async () => {
    vi.mocked(api.getRenderings).mockImplementation(async (_run, ids) => ({ kind: 'audio/wav', items: ids.map((id) => ({ id, data_url: `data:image/png;base64,${id}` })) }));
    const run = runInfo('audio-run', { rendering_kind: 'audio/wav' });
    const { openSample } = renderView(<ThumbGrid samples={refs([7, 8])} testId="grid" />, { runs: [run] });
    await waitFor(() => expect(screen.getByTestId('grid').querySelectorAll('img')).toHaveLength(2));
    expect(screen.getByTestId('grid').querySelector('img')?.getAttribute('src')).toBe('data:image/png;base64,7');
    const audio = screen.getAllByTestId('thumb-audio')[1] as HTMLAudioElement;
    expect(audio.getAttribute('src')).toBe(api.renderUrl('audio-run', 8));
    const play = vi.spyOn(audio, 'play').mockResolvedValue();
    screen.getAllByTestId('audio-play')[1].click();
    expect(play).toHaveBeenCalledTimes(1);
    expect(openSample).not.toHaveBeenCalled();
  });
});
