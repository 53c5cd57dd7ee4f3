import { describe, expect, it } from 'vitest';
import { CATEGORICAL, categoricalColor, hexToRgb, MISSING_COLOR, niceTicks, numericScale, rampColor, rampColors, rgbToHex } from './colors';

describe('categorical palette', () => {
  it('gives distinct colours and cycles past its length', () => {
    expect(new Set(CATEGORICAL).size).toBe(CATEGORICAL.length);
    expect(categoricalColor(0)).toBe(CATEGORICAL[0]);
    expect(categoricalColor(CATEGORICAL.length + 1)).toBe(CATEGORICAL[1]);
  });

  it('shows missing codes in grey', () => {
    expect(categoricalColor(-1)).toBe(MISSING_COLOR);
    expect(categoricalColor(1.5)).toBe(MISSING_COLOR);
  });
});

describe('numeric scale', () => {
  it('maps min..max to 0..1 and clamps', () => {
    const s = numericScale(10, 20);
    expect(s.normalize(10)).toBe(0);
    expect(s.normalize(15)).toBe(0.5);
    expect(s.normalize(25)).toBe(1);
    expect(Number.isNaN(s.normalize(NaN))).toBe(true);
    expect(s.color(NaN)).toBe(MISSING_COLOR);
  });

  it('puts a constant column in the middle', () => {
    expect(numericScale(3, 3).normalize(3)).toBe(0.5);
  });

  it('interpolates the ramp between its stops', () => {
    expect(rampColor(0)).toBe('#440154');
    expect(rampColor(1)).toBe('#fde725');
    expect(rampColor(-5)).toBe('#440154');
    const mid = hexToRgb(rampColor(0.5));
    expect(mid).toEqual(hexToRgb('#21918c'));
    expect(rampColors(5)).toHaveLength(5);
    expect(rampColors(5)[4]).toBe('#fde725');
  });

  it('converts hex and rgb', () => {
    expect(hexToRgb('#fff')).toEqual([255, 255, 255]);
    expect(rgbToHex([255, 0, 127.6])).toBe('#ff0080');
    expect(() => hexToRgb('nope')).toThrow(RangeError);
  });
});

describe('nice ticks', () => {
  it('covers the range with round steps', () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(-3.2, 4.9, 4)).toEqual([-2, 0, 2, 4]);
    expect(niceTicks(0.01, 0.049, 3)).toEqual([0.01, 0.02, 0.03, 0.04]);
    expect(niceTicks(2, 2)).toEqual([2]);
  });
});
