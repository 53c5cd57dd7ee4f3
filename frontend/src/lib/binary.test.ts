import { describe, expect, it } from 'vitest';
import { CODE_STEPS, codesToNdc, decodeColumn, decodeScoreCodes, extent, NOT_FINITE_CODE, parseBounds, parseDtype, parseShape, readArray, type Dtype } from './binary';

function littleEndian(values: number[], kind: 'f4' | 'i4'): ArrayBuffer {
  const buf = new ArrayBuffer(values.length * 4);
  const view = new DataView(buf);
  values.forEach((v, i) => (kind === 'f4' ? view.setFloat32(i * 4, v, true) : view.setInt32(i * 4, v, true)));
  return buf;
}

describe('binary answers', () => {
  it('decodes row-major uint16 score codes with their column bounds', () => {
    const buf = new ArrayBuffer(3 * 2 * 2);
    const view = new DataView(buf);
    [0, 65534, 32767, 1, 65534, NOT_FINITE_CODE].forEach((c, i) => view.setUint16(i * 2, c, true));
    const m = decodeScoreCodes(buf, '3,2', '-1.5,2.5,0.1,0.2');
    expect([m.rows, m.cols]).toEqual([3, 2]);
    expect(Array.from(m.codes)).toEqual([0, 65534, 32767, 1, 65534, NOT_FINITE_CODE]);
    expect(m.bounds).toEqual([
      [-1.5, 2.5],
      [0.1, 0.2],
    ]);
  });

  it('checks the shape and the bounds against the body', () => {
    expect(() => decodeScoreCodes(new ArrayBuffer(6), '2,2', '0,1,0,1')).toThrow(/X-Shape says 2x2 = 4 codes, the body has 6 bytes/);
    expect(() => parseBounds('0,1', 2)).toThrow(/X-Bounds/);
    expect(() => parseBounds('0,nan', 1)).toThrow(/X-Bounds/);
    expect(() => parseBounds(null, 1)).toThrow(/X-Bounds/);
    expect(() => decodeColumn(new ArrayBuffer(6), 'int32')).toThrow(/4-byte/);
    expect(() => parseShape(null)).toThrow(/X-Shape/);
    expect(parseShape(' 10 , 3 ')).toEqual([10, 3]);
  });

  it('maps codes to padded normalised coordinates within half a step of their exact values', () => {
    // values quantised as the server does: round((v - lo) / (hi - lo) * 65534)
    const values = [-3, 7, 0.123456, 2.5e-3, 6.999];
    const [lo, hi] = [-3, 7];
    const codes = new Uint16Array([...values.map((v) => Math.round(((v - lo) / (hi - lo)) * CODE_STEPS)), NOT_FINITE_CODE]);
    const m = { codes, rows: codes.length, cols: 1, bounds: [[lo, hi]] as [number, number][] };
    const { ndc, domain } = codesToNdc(m, 0);
    expect(domain[0]).toBeCloseTo(-3.5, 12); // 5% of the range on each side
    expect(domain[1]).toBeCloseTo(7.5, 12);
    const k = 2 / (domain[1] - domain[0]);
    const halfStep = ((hi - lo) / CODE_STEPS / 2) * k;
    values.forEach((v, i) => expect(Math.abs(ndc[i] - (-1 + (v - domain[0]) * k))).toBeLessThanOrEqual(halfStep + 1e-6));
    expect(ndc[0]).toBeCloseTo(-1 + 1 / 11, 6); // the ends exact (to float32)
    expect(ndc[1]).toBeCloseTo(1 - 1 / 11, 6);
    expect(ndc[5]).toBe(0); // not finite: the centre
    expect(() => codesToNdc(m, 1)).toThrow(RangeError);
  });

  it('reads one column of several and gives a constant column a span', () => {
    const m = { codes: new Uint16Array([0, 9, CODE_STEPS, 9]), rows: 2, cols: 2, bounds: [[0, 1], [4, 4]] as [number, number][] };
    const x = codesToNdc(m, 0);
    expect(Array.from(x.ndc).map((v) => +v.toFixed(5))).toEqual([-0.90909, 0.90909]);
    const y = codesToNdc(m, 1);
    expect(y.domain).toEqual([4 - 0.2, 4 + 4 * 1.05]);
    expect(y.ndc[0]).toBeCloseTo(y.ndc[1], 12);
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

  it('widens int8 and int16 category codes to int32', () => {
    const int8 = decodeColumn(new Int8Array([0, 126, -1, 3]).buffer, 'int8');
    expect(int8).toBeInstanceOf(Int32Array);
    expect(Array.from(int8)).toEqual([0, 126, -1, 3]);
    const buf = new ArrayBuffer(6);
    const view = new DataView(buf);
    [-1, 300, 32767].forEach((v, i) => view.setInt16(i * 2, v, true));
    const int16 = decodeColumn(buf, 'int16');
    expect(int16).toBeInstanceOf(Int32Array);
    expect(Array.from(int16)).toEqual([-1, 300, 32767]);
    expect(() => decodeColumn(new ArrayBuffer(3), 'int16')).toThrow(/2-byte/);
    expect([parseDtype('|i1'), parseDtype('<i2')]).toEqual(['int8', 'int16']);
  });

  it('reads every X-Dtype little-endian, checking the body is whole values of its width', () => {
    const values: Record<Dtype, number[]> = {
      int8: [-128, 0, 127],
      int16: [-32768, 300, 32767],
      uint16: [0, 300, 65535],
      int32: [-2147483648, 70000, 2147483647],
      float32: [0.5, -2, 3.25e8],
    };
    const write: Record<Dtype, [number, (v: DataView, o: number, x: number) => void]> = {
      int8: [1, (v, o, x) => v.setInt8(o, x)],
      int16: [2, (v, o, x) => v.setInt16(o, x, true)],
      uint16: [2, (v, o, x) => v.setUint16(o, x, true)],
      int32: [4, (v, o, x) => v.setInt32(o, x, true)],
      float32: [4, (v, o, x) => v.setFloat32(o, x, true)],
    };
    for (const dtype of Object.keys(values) as Dtype[]) {
      const [bytes, set] = write[dtype];
      const buf = new ArrayBuffer(values[dtype].length * bytes);
      const view = new DataView(buf);
      values[dtype].forEach((x, i) => set(view, i * bytes, x));
      expect(Array.from(readArray(buf, dtype))).toEqual(values[dtype]);
      if (bytes > 1) expect(() => readArray(new ArrayBuffer(bytes + 1), dtype)).toThrow(`not a whole number of ${bytes}-byte ${dtype} values`);
    }
    expect(readArray(new ArrayBuffer(8), 'float32')).toBeInstanceOf(Float32Array);
    expect(readArray(new ArrayBuffer(8), 'uint16')).toBeInstanceOf(Uint16Array);
  });

  it('widens narrow codes into a new int32 array and reads 4-byte columns in place', () => {
    const narrow = new Int16Array([-1, 2, 32767]);
    const wide = decodeColumn(narrow.buffer, 'int16');
    expect(wide).toBeInstanceOf(Int32Array);
    expect(wide.buffer).not.toBe(narrow.buffer);
    expect(Array.from(wide)).toEqual([-1, 2, 32767]);
    const ints = new Int32Array([5, -1]);
    expect(decodeColumn(ints.buffer, 'int32').buffer).toBe(ints.buffer); // no copy (little-endian machine)
  });

  it('finds the finite extent', () => {
    expect(extent(new Float32Array([3, NaN, -1, Infinity, 2]))).toEqual([-1, 3]);
    expect(extent([])).toEqual([0, 0]);
  });
});
