// @vitest-environment happy-dom
import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { renderView, runInfo } from '../test/app';
import { Lightbox } from './Lightbox';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getRenderings: vi.fn(),
}));

const textRun = runInfo('texts', { rendering_kind: 'text/plain' });
const long = (id: number) => `Title ${id}\n${'a long body of words '.repeat(20)}end of ${id}`;

beforeEach(() => {
  vi.mocked(api.getRenderings)
    .mockReset()
    .mockImplementation(async (_run, ids) => ({ kind: 'text/plain', items: ids.map((id) => ({ id, text: long(id) })) }));
});

describe('Lightbox', () => {
  it('shows the full text, steps with the arrow keys and closes on Esc', async () => {
    const onStep = vi.fn();
    const onClose = vi.fn();
    const sampleViewKeys = vi.fn();
    window.addEventListener('keydown', sampleViewKeys); // the sample view behind it listens too
    renderView(<Lightbox run={textRun} ids={[4, 9, 2]} index={1} onStep={onStep} onClose={onClose} />, { runs: [textRun] });
    await waitFor(() => expect(screen.getByTestId('lightbox-text').textContent).toContain('end of 9'));
    expect(screen.getByTestId('lightbox-text').textContent).toContain('a long body of words '.repeat(20).trim());
    expect(screen.getByTestId('lightbox-position').textContent).toContain('2 of 3');
    fireEvent.keyDown(window, { key: 'ArrowRight' });
    expect(onStep).toHaveBeenLastCalledWith(2);
    fireEvent.keyDown(window, { key: 'ArrowLeft' });
    expect(onStep).toHaveBeenLastCalledWith(0);
    fireEvent.keyDown(window, { key: 'End' });
    expect(onStep).toHaveBeenLastCalledWith(2);
    fireEvent.keyDown(window, { key: 'Escape' });
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(sampleViewKeys).not.toHaveBeenCalled();
    window.removeEventListener('keydown', sampleViewKeys);
  });

  it('shows an image large', async () => {
    vi.mocked(api.getRenderings).mockImplementation(async (_run, ids) => ({ kind: 'image/png', items: ids.map((id) => ({ id, data_url: `data:image/png;base64,AAA${id}` })) }));
    const imageRun = runInfo('imgs');
    renderView(<Lightbox run={imageRun} ids={[7]} index={0} onStep={vi.fn()} onClose={vi.fn()} />, { runs: [imageRun] });
    await waitFor(() => expect(screen.getByTestId('lightbox-img').getAttribute('src')).toBe('data:image/png;base64,AAA7'));
    expect((screen.getByRole('button', { name: 'Next sample' }) as HTMLButtonElement).disabled).toBe(true);
  });
});
