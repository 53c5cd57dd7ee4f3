import { describe, expect, it } from 'vitest';
import { MISSING_COLOR } from './colors';
import { columnOf, pointRows, scatterBasis, scatterPoints, shownComponents } from './scatterPoints';
import { CODE_STEPS } from './binary';

// rows (0, 10), (1, 20), (2, 30): each column's range in codes 0, half, all
const half = CODE_STEPS / 2;
const scores = { rows: 3, cols: 2, codes: new Uint16Array([0, 0, half, half, CODE_STEPS, CODE_STEPS]), bounds: [[0, 2], [10, 30]] as [number, number][], components: [0, 1] };

describe('scatterPoints', () => {
  it('maps two score columns into [-1, 1] with 5% padding and their padded domains', () => {
    const p = scatterPoints(scores, 0, 1, null);
    expect(p.n).toBe(3);
    expect(Array.from(p.x).map((v) => +v.toFixed(4))).toEqual([-0.9091, 0, 0.9091]);
    expect(Array.from(p.y).map((v) => +v.toFixed(4))).toEqual([-0.9091, 0, 0.9091]);
    expect(p.xDomain.map((v) => +v.toFixed(6))).toEqual([-0.1, 2.1]);
    expect(p.yDomain.map((v) => +v.toFixed(6))).toEqual([9, 31]);
    expect(p.zType).toBe('categorical');
    expect(p.pointColor).toHaveLength(1);
  });

  it('colours categories, missing codes last', () => {
    const p = scatterPoints(scores, 1, 0, { column: { kind: 'categorical', categories: ['a', 'b'] }, values: new Int32Array([1, -1, 0]) });
    expect(Array.from(p.z)).toEqual([1, 2, 0]);
    expect(p.pointColor).toHaveLength(3);
    expect(p.pointColor[2]).toBe(MISSING_COLOR);
  });

  it('normalises numeric values onto a ramp', () => {
    const p = scatterPoints(scores, 0, 1, { column: { kind: 'numeric', categories: null }, values: new Float32Array([0, 5, 10]) });
    expect(p.zType).toBe('continuous');
    expect(Array.from(p.z)).toEqual([0, 0.5, 1]);
  });
});

describe('pointRows', () => {
  it('gives regl-scatterplot one [x, y, z] row a point, made once per points', () => {
    const p = scatterPoints(scores, 0, 1, { column: { kind: 'categorical', categories: ['a', 'b'] }, values: new Int32Array([1, -1, 0]) });
    const rows = pointRows(p);
    expect(rows).toEqual([0, 1, 2].map((i) => [p.x[i], p.y[i], p.z[i]]));
    expect(rows[1]).toEqual([0, 0, 2]);
    expect(pointRows(p)).toBe(rows);
  });
});

describe('shownComponents', () => {
  it('asks for the two shown components only, once when both axes show one', () => {
    expect(shownComponents(3, 0)).toEqual([3, 0]);
    expect(shownComponents(2, 2)).toEqual([2]);
  });

  it('finds a component among the fetched columns, -1 when it was not fetched', () => {
    const two = { rows: 1, cols: 2, codes: new Uint16Array([5, 6]), bounds: [[0, 9], [0, 9]] as [number, number][], components: [4, 1] };
    expect(columnOf(two, 1)).toBe(1);
    expect(columnOf(two, 4)).toBe(0);
    expect(columnOf(two, 0)).toBe(-1);
  });
});

describe('scatterBasis', () => {
  it('shows ICA when the app names it and PCA otherwise (a direction is one axis)', () => {
    expect(scatterBasis('ica')).toBe('ica');
    expect(['pca', 'dir', '', undefined].map(scatterBasis)).toEqual(['pca', 'pca', 'pca', 'pca']);
  });
});
