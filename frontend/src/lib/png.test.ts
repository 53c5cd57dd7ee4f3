import { describe, expect, it } from 'vitest';
import { captureScale, isTransparent, pngFileName, rotationOf, wrapLines } from './png';

describe('PNG download helpers', () => {
  it('makes safe file names', () => {
    expect(pngFileName('fashion-cnn/fc: PC 1')).toBe('fashion-cnn-fc-pc-1.png');
    expect(pngFileName('  ')).toBe('chart.png');
    expect(pngFileName('Run A → B (dir:ab12)')).toBe('run-a-b-dir-ab12.png');
    expect(pngFileName('.hidden')).toBe('hidden.png');
  });

  it('draws at 2x unless the image would be too large', () => {
    expect(captureScale(800, 600)).toBe(2);
    const s = captureScale(6000, 4000, 24_000_000);
    expect(s).toBeCloseTo(1, 6);
    expect(6000 * s * 4000 * s).toBeLessThanOrEqual(24_000_000 + 1);
    expect(captureScale(1e6, 1e6)).toBe(0.25);
    expect(captureScale(0, 10)).toBe(2);
  });

  it('tells colours that paint nothing', () => {
    for (const c of ['transparent', 'rgba(0, 0, 0, 0)', 'rgb(0 0 0 / 0)', 'rgba(1,2,3,0%)', '', null, undefined]) expect(isTransparent(c)).toBe(true);
    for (const c of ['rgb(255, 255, 255)', 'rgba(0, 0, 0, 0.5)', '#fff', 'rgb(0 0 0 / 0.2)']) expect(isTransparent(c)).toBe(false);
  });

  it('wraps words into the widths of the lines', () => {
    const measure = (s: string) => s.length; // one unit per character
    expect(wrapLines('the quick brown fox jumps', [9], measure)).toEqual(['the quick', 'brown fox', 'jumps']);
    expect(wrapLines('  a   b  ', [10], measure)).toEqual(['a b']);
    expect(wrapLines('first line then the rest', [10, 100], measure)).toEqual(['first line', 'then the rest']);
    expect(wrapLines('extraordinarily long', [5], measure)).toEqual(['extraordinarily', 'long']);
    expect(wrapLines('', [5], measure)).toEqual([]);
  });

  it('reads the rotation of a computed transform', () => {
    expect(rotationOf('matrix(6.12323e-17, -1, 1, 6.12323e-17, 0, 0)')).toBeCloseTo(-Math.PI / 2, 6);
    expect(rotationOf('matrix(1, 0, 0, 1, 10, 0)')).toBe(0);
    expect(rotationOf('none')).toBe(0);
    expect(rotationOf(undefined)).toBe(0);
  });
});
