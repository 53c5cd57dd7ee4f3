import { describe, expect, it } from 'vitest';
import { parseWindow, quoteToken, showTokens, stripColor, stripPosition, tokenMakeup, TOKEN_WINDOW_DEFAULT } from './tokens';

describe('tokenMakeup', () => {
  it('names the most common token and its share', () => {
    const tokens = [...Array(9).fill(' not'), ...Array(7).fill(' no')];
    expect(tokenMakeup(tokens)).toEqual({ token: ' not', count: 9, total: 16, text: "9/16 are ' not'" });
  });
  it('breaks ties by the most extreme (first) token and handles one', () => {
    expect(tokenMakeup(['a', 'b', 'b', 'a'])?.token).toBe('a');
    expect(tokenMakeup(['x'])?.text).toBe("1/1 is 'x'");
    expect(tokenMakeup([])).toBeNull();
  });
});

describe('strip colours', () => {
  it('maps the scale ends to -1 and 1 and clamps beyond', () => {
    expect(stripPosition(0, -2, 2)).toBe(0);
    expect(stripPosition(2, -2, 2)).toBe(1);
    expect(stripPosition(-9, -2, 2)).toBe(-1);
    expect(stripPosition(null, -2, 2)).toBe(0);
  });
  it('is white in the middle, blue low and red high', () => {
    expect(stripColor(0)).toBe('rgb(255, 255, 255)');
    expect(stripColor(-1)).toBe('rgb(59, 110, 200)');
    expect(stripColor(1)).toBe('rgb(210, 70, 50)');
  });
});

describe('tokens read', () => {
  it('quotes with spaces kept', () => {
    expect(quoteToken(' not')).toBe("' not'");
  });
  it('parses a stored window size', () => {
    expect(parseWindow('3')).toBe(3);
    expect(parseWindow(null)).toBe(TOKEN_WINDOW_DEFAULT);
    expect(parseWindow('99')).toBe(TOKEN_WINDOW_DEFAULT);
  });
});

describe('showTokens', () => {
  it('spaces WordPiece words and joins ## pieces', () => {
    const shown = showTokens(['the', 'play', '##ing', 'cat', '.']);
    expect(shown.map((t) => (t.spaceBefore ? ' ' : '') + t.text).join('')).toBe('the playing cat.');
  });
  it('keeps GPT-2 tokens as they are', () => {
    const shown = showTokens(['It', ' is', ' not', '.']);
    expect(shown.map((t) => (t.spaceBefore ? ' ' : '') + t.text).join('')).toBe('It is not.');
  });
});
