// @vitest-environment happy-dom
import { screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from '../api';
import { renderView, runInfo } from '../test/app';
import { TokenMakeupNote, TokenThumb } from './TokenThumb';

vi.mock('../api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../api')>()),
  getTokenContexts: vi.fn(),
}));

const TOKENS = ['the', 'cat', 'is', 'not', 'here'];

beforeEach(() => {
  vi.mocked(api.getTokenContexts)
    .mockReset()
    .mockImplementation(async (_run, ids, window) => ({
      items: ids.map((id) => ({
        id,
        text_id: 0,
        position: id,
        tokens: TOKENS.slice(Math.max(0, id - window), id + window + 1),
        focus: Math.min(id, window),
        more_before: id - window > 0,
        more_after: id + window + 1 < TOKENS.length,
        text: 'the cat is not here',
      })),
    }));
});

describe('per-token thumbnails', () => {
  it('highlight the token within its window and hold the whole text in the title', async () => {
    renderView(<TokenThumb id={3} label="a" score={1.5} />, { runs: [runInfo('r1', { per_token: true })] });
    await waitFor(() => expect(screen.getByTestId('token-focus').textContent).toBe(' not'));
    expect(screen.getByTestId('sample-thumb').getAttribute('title')).toContain('the cat is not here');
    expect(vi.mocked(api.getTokenContexts).mock.calls[0][1]).toEqual([3]);
  });

  it('batch the ids of one render into one request and name the make-up of an end', async () => {
    renderView(<TokenMakeupNote ids={[3, 3, 1]} />, { runs: [runInfo('r1', { per_token: true })] });
    await waitFor(() => expect(screen.getByTestId('token-makeup').textContent).toBe("2/3 are 'not'"));
    expect(api.getTokenContexts).toHaveBeenCalledTimes(1);
  });
});
