import { describe, expect, it } from 'vitest';
import { decodeColumn, decodeMatrix, extent, matrixColumn, parseDtype, parseShape } from './binary';

function littleEndian(values: number[], kind: 'f4' | 'i4'): ArrayBuffer {
  const buf = new ArrayBuffer(values.length * 4);
  const view = new DataView(buf);
  values.forEach((v, i) => (kind === 'f4' ? view.setFloat32(i * 4, v, true) : view.setInt32(i * 4, v, true)));
  return buf;
}

describe('binary answers', () => {
  it('decodes a row-major float32 (N, K) score matrix', () => {
    const m = decodeMatrix(littleEndian([1, 2, 3, 4, 5, 6], 'f4'), '3,2');
    expect(m.rows).toBe(3);
    expect(m.cols).toBe(2);
    expect(Array.from(matrixColumn(m, 0))).toEqual([1, 3, 5]);
    expect(Array.from(matrixColumn(m, 1))).toEqual([2, 4, 6]);
    expect(() => matrixColumn(m, 2)).toThrow(RangeError);
  });

  it('checks the shape against the body', () => {
    expect(() => decodeMatrix(littleEndian([1, 2, 3], 'f4'), '2,2')).toThrow(/X-Shape says 2x2/);
    expect(() => decodeMatrix(new ArrayBuffer(6), '1,1')).toThrow(/4-byte/);
    expect(() => parseShape(null)).toThrow(/X-Shape/);
    expect(parseShape(' 10 , 3 ')).toEqual([10, 3]);
  });

  it('decodes int32 category codes and float32 values by X-Dtype', () => {
    const codes = decodeColumn(littleEndian([0, 2, -1, 1], 'i4'), 'int32');
    expect(codes).toBeInstanceOf(Int32Array);
    expect(Array.from(codes)).toEqual([0, 2, -1, 1]);
    const values = decodeColumn(littleEndian([0.5, NaN, -2], 'f4'), 'float32');
    expect(values).toBeInstanceOf(Float32Array);
    expect(values[0]).toBe(0.5);
    expect(Number.isNaN(values[1])).toBe(true);
    expect(parseDtype('<i4')).toBe('int32');
    expect(() => parseDtype('float64')).toThrow(/X-Dtype/);
  });

  it('finds the finite extent', () => {
    expect(extent(new Float32Array([3, NaN, -1, Infinity, 2]))).toEqual([-1, 3]);
    expect(extent([])).toEqual([0, 0]);
  });
});
