import { describe, expect, it } from 'vitest';
import type { AssociationColumn, RunInfo } from '../api';
import {
  argmaxCell,
  chosenLayers,
  ckaColor,
  componentMeaning,
  strongestMeaning,
  divergingColor,
  filterLinks,
  formatStatistic,
  formatStatValue,
  linkWidth,
  luminance,
  NEGATIVE_COLOR,
  nodeRadius,
  pairText,
  POSITIVE_COLOR,
  signedPcName,
  strength,
  strongestColumn,
  textOn,
} from './analysis';
import { MISSING_COLOR, rampColor } from './colors';

describe('colour scales', () => {
  it('maps r to a diverging scale through the given middle', () => {
    expect(divergingColor(0, '#ffffff')).toBe('#ffffff');
    expect(divergingColor(0, '#161a22')).toBe('#161a22');
    expect(divergingColor(1)).toBe(POSITIVE_COLOR);
    expect(divergingColor(-1)).toBe(NEGATIVE_COLOR);
    expect(divergingColor(1.4)).toBe(POSITIVE_COLOR);
    expect(divergingColor(null)).toBe(MISSING_COLOR);
    // dark background: |r| = 1 is the lightest shade, lighter than |r| = 0.5
    expect(luminance(divergingColor(1, '#161a22'))).toBeGreaterThan(luminance(divergingColor(0.5, '#161a22')));
    expect(luminance(divergingColor(-1, '#161a22'))).toBeGreaterThan(luminance(divergingColor(-0.5, '#161a22')));
    expect(luminance(divergingColor(1))).toBeLessThan(luminance(divergingColor(0.5)));
    expect(divergingColor(NaN)).toBe(MISSING_COLOR);
    // positive is red-ish, negative blue-ish, symmetric in strength
    const [pr, , pb] = [1, 3, 5].map((i) => parseInt(divergingColor(0.6).slice(i, i + 2), 16));
    const [nr, , nb] = [1, 3, 5].map((i) => parseInt(divergingColor(-0.6).slice(i, i + 2), 16));
    expect(pr).toBeGreaterThan(pb);
    expect(nb).toBeGreaterThan(nr);
  });

  it('maps CKA onto the ramp, with readable text on top', () => {
    expect(ckaColor(0)).toBe(rampColor(0));
    expect(ckaColor(1)).toBe(rampColor(1));
    expect(ckaColor(null)).toBe(MISSING_COLOR);
    expect(textOn(ckaColor(0))).toBe('#ffffff'); // dark purple
    expect(textOn(ckaColor(1))).toBe('#000000'); // yellow
    expect(textOn('#ffffff')).toBe('#000000');
  });
});

describe('links between components', () => {
  const r = [
    [0.9, -0.1, null],
    [-0.45, 0.3, 0.05],
  ];

  it('keeps |r| at or above the threshold, weakest first', () => {
    expect(filterLinks(r, 0.3)).toEqual([
      { a: 1, b: 1, r: 0.3 },
      { a: 1, b: 0, r: -0.45 },
      { a: 0, b: 0, r: 0.9 },
    ]);
    expect(filterLinks(r, 0.5)).toEqual([{ a: 0, b: 0, r: 0.9 }]);
    expect(filterLinks(r, 0).length).toBe(5); // null is never a link
    expect(filterLinks(r, 0.95)).toEqual([]);
  });

  it('a higher threshold never adds links', () => {
    let last = Infinity;
    for (const t of [0, 0.1, 0.3, 0.5, 0.7, 0.9, 1]) {
      const n = filterLinks(r, t).length;
      expect(n).toBeLessThanOrEqual(last);
      last = n;
    }
  });

  it('sizes links and nodes', () => {
    expect(linkWidth(0.3, 0.3)).toBe(1);
    expect(linkWidth(-1, 0.3)).toBe(9);
    expect(linkWidth(0.65, 0.3)).toBeCloseTo(5);
    expect(linkWidth(1, 1)).toBe(9);
    expect(nodeRadius(0.5, 0.5)).toBe(17);
    expect(nodeRadius(0, 0.5)).toBe(5);
    expect(nodeRadius(0.125, 0.5)).toBeCloseTo(11);
  });

  it('chooses the gallery rows when two or more, else all layers', () => {
    const run = { layers: [{ name: 'input' }, { name: 'conv' }, { name: 'fc' }] } as RunInfo;
    expect(chosenLayers(run, [])).toEqual(['input', 'conv', 'fc']);
    expect(chosenLayers(run, ['fc'])).toEqual(['input', 'conv', 'fc']);
    expect(chosenLayers(run, ['fc', 'input'])).toEqual(['input', 'fc']);
    expect(chosenLayers(run, ['fc', 'gone'])).toEqual(['input', 'conv', 'fc']);
  });
});

describe('summaries', () => {
  const label: AssociationColumn = {
    name: 'label',
    kind: 'categorical',
    statistic: 'eta2',
    values: [0.7149, null],
    summaries: ['separates Sandal, Sneaker from Pullover, Coat', 'no category stands out'],
  };
  const brightness: AssociationColumn = {
    name: 'brightness',
    kind: 'numeric',
    statistic: 'r',
    values: [-0.712, 0.9],
    summaries: ['r = −0.71 with brightness', 'r = +0.90 with brightness'],
  };

  it('formats eta² and signed r', () => {
    expect(formatStatistic('eta2', 0.7149)).toBe('η² = 0.71');
    expect(formatStatistic('r', 0.712)).toBe('r = +0.71');
    expect(formatStatistic('r', -0.712)).toBe('r = −0.71');
    expect(formatStatistic('r', null)).toBe('r = –');
    expect(formatStatValue('r', 0.001)).toBe('0.00');
    expect(formatStatValue('eta2', 0.5, 1)).toBe('0.5');
    expect(strength(-0.4)).toBe(0.4);
    expect(strength(null)).toBeNaN();
  });

  it('picks the asked column, else the first', () => {
    expect(componentMeaning([label, brightness], 0)).toEqual({
      column: 'label',
      statistic: 'eta2',
      value: 0.7149,
      summary: 'separates Sandal, Sneaker from Pullover, Coat',
      stat: 'η² = 0.71',
    });
    expect(componentMeaning([label, brightness], 1, 'brightness')?.stat).toBe('r = +0.90');
    expect(componentMeaning([label, brightness], 1, 'nope')?.column).toBe('label');
    expect(componentMeaning([label], 1)?.stat).toBe('η² = –');
    expect(componentMeaning([label], 5)).toBeNull();
    expect(componentMeaning([], 0)).toBeNull();
    expect(componentMeaning(null, 0)).toBeNull();
    expect(strongestColumn([label, brightness], 0)?.name).toBe('label');
    expect(strongestColumn([label, brightness], 1)?.name).toBe('brightness');
  });

  it('finds the strongest column of any kind', () => {
    // |r| = 0.712 beats eta² = 0.7149? no: 0.7149 > 0.712, the label wins PC 1
    expect(strongestMeaning([label, brightness], 0)?.column).toBe('label');
    // the label is undefined on PC 2: brightness, r = +0.90
    expect(strongestMeaning([label, brightness], 1)).toMatchObject({ column: 'brightness', stat: 'r = +0.90' });
    expect(strongestMeaning([{ ...brightness, values: [-0.95, 0] }, label], 0)).toMatchObject({ column: 'brightness', stat: 'r = −0.95' });
    expect(strongestMeaning([], 0)).toBeNull();
    expect(strongestMeaning([{ ...label, values: [null, null] }], 0)).toBeNull();
  });

  it('describes a matched pair', () => {
    expect(signedPcName(0, -1)).toBe('−PC 1');
    expect(signedPcName(2, 1)).toBe('PC 3');
    expect(pairText({ component_a: 0, component_b: 0, r: 0.5512, sign: -1, ratio_a: 0.55, ratio_b: 0.28 })).toBe(
      'A: PC 1 (55.0%) ~ B: −PC 1 (28.0%) · |r| = 0.55',
    );
  });
});

describe('comparing runs', () => {
  it('finds the largest cell', () => {
    expect(argmaxCell([[0.1, null], [0.9, 0.3]])).toEqual([1, 0]);
    expect(argmaxCell([[null]])).toBeNull();
  });
});
