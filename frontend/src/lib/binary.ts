/** Decoding of the server's binary answers: little-endian arrays keyed by their `X-Dtype`, uint16 score codes. */
import { paddedDomain, type Normalized } from './scale';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The typed array each `X-Dtype` the server sends decodes to. */
interface Arrays {
  int8: Int8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  float32: Float32Array;
}
export type Dtype = keyof Arrays;

interface Layout<T> {
  bytes: number;
  /** The values in place (little-endian machines) or a zeroed array of n values to fill. */
  make: (from: ArrayBuffer | number) => T;
  /** Value `i` read little-endian (big-endian machines). */
  get: (view: DataView, offset: number) => number;
}

const LAYOUTS: { [D in Dtype]: Layout<Arrays[D]> } = {
  int8: { bytes: 1, make: (b) => (typeof b === 'number' ? new Int8Array(b) : new Int8Array(b)), get: (v, o) => v.getInt8(o) },
  int16: { bytes: 2, make: (b) => (typeof b === 'number' ? new Int16Array(b) : new Int16Array(b)), get: (v, o) => v.getInt16(o, true) },
  uint16: { bytes: 2, make: (b) => (typeof b === 'number' ? new Uint16Array(b) : new Uint16Array(b)), get: (v, o) => v.getUint16(o, true) },
  int32: { bytes: 4, make: (b) => (typeof b === 'number' ? new Int32Array(b) : new Int32Array(b)), get: (v, o) => v.getInt32(o, true) },
  float32: { bytes: 4, make: (b) => (typeof b === 'number' ? new Float32Array(b) : new Float32Array(b)), get: (v, o) => v.getFloat32(o, true) },
};

/** A little-endian array of `dtype` from a binary answer's bytes (a view on them where the machine is little-endian). */
export function readArray<D extends Dtype>(buffer: ArrayBuffer, dtype: D): Arrays[D] {
  const { bytes, make, get }: Layout<Arrays[D]> = LAYOUTS[dtype];
  if (buffer.byteLength % bytes !== 0) {
    throw new RangeError(`binary answer of ${buffer.byteLength} bytes is not a whole number of ${bytes}-byte ${dtype} values`);
  }
  if (LITTLE_ENDIAN) return make(buffer);
  const out = make(buffer.byteLength / bytes);
  const view = new DataView(buffer);
  for (let i = 0; i < out.length; i += 1) out[i] = get(view, i * bytes);
  return out;
}

/** Parse an `X-Shape: "N,K"` header. */
export function parseShape(header: string | null): [number, number] {
  const m = header ? /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(header) : null;
  if (!m) throw new RangeError(`bad X-Shape header ${JSON.stringify(header)}; expected "N,K"`);
  return [parseInt(m[1], 10), parseInt(m[2], 10)];
}

/** Scores quantised to 16 bits (the server's `dtype=uint16`): row-major (N, K) codes and each column's range. */
export interface ScoreCodes {
  codes: Uint16Array;
  rows: number;
  cols: number;
  /** Column j's finite [lo, hi]: code q stands for lo + q (hi - lo) / CODE_STEPS, within half a step. */
  bounds: [number, number][];
}

/** Codes 0..CODE_STEPS stand for values; NOT_FINITE_CODE marks a value that is not finite. */
export const CODE_STEPS = 65534;
export const NOT_FINITE_CODE = 65535;

/** Parse an `X-Bounds: "lo0,hi0,lo1,hi1,..."` header of `cols` columns. */
export function parseBounds(header: string | null, cols: number): [number, number][] {
  const parts = (header ?? '').split(',').map((v) => Number(v.trim()));
  if (!header || parts.length !== 2 * cols || parts.some((v) => !Number.isFinite(v))) {
    throw new RangeError(`bad X-Bounds header ${JSON.stringify(header)}; expected ${cols} finite "lo,hi" pairs`);
  }
  return Array.from({ length: cols }, (_, j) => [parts[2 * j], parts[2 * j + 1]]);
}

/** A row-major uint16 (N, K) code matrix from its bytes and X-Shape and X-Bounds headers. */
export function decodeScoreCodes(buffer: ArrayBuffer, shapeHeader: string | null, boundsHeader: string | null): ScoreCodes {
  const [rows, cols] = parseShape(shapeHeader);
  if (buffer.byteLength !== rows * cols * 2) {
    throw new RangeError(`X-Shape says ${rows}x${cols} = ${rows * cols} codes, the body has ${buffer.byteLength} bytes`);
  }
  return { codes: readArray(buffer, 'uint16'), rows, cols, bounds: parseBounds(boundsHeader, cols) };
}

/**
 * Column `j` of `m` in WebGL's normalised coordinates, as `toNdc` maps values whose extent is the
 * column's bounds (padded by `pad` on each side), straight from the codes (one multiply-add a
 * point, no float copy of the scores); a value that is not finite goes to the centre.
 */
export function codesToNdc(m: ScoreCodes, j: number, pad = 0.05): Normalized {
  if (j < 0 || j >= m.cols) throw new RangeError(`column ${j} is out of range (0..${m.cols - 1})`);
  const [lo, hi] = m.bounds[j];
  const domain = paddedDomain(lo, hi, pad);
  // ndc = -1 + (lo + q * step - d0) * k = a + q * b
  const k = 2 / (domain[1] - domain[0]);
  const a = -1 + (lo - domain[0]) * k;
  const b = ((hi - lo) / CODE_STEPS) * k;
  const out = new Float32Array(m.rows);
  const { codes, cols } = m;
  for (let i = 0, at = j; i < m.rows; i += 1, at += cols) {
    const q = codes[at];
    out[i] = q === NOT_FINITE_CODE ? 0 : a + q * b;
  }
  return { ndc: out, domain };
}

/** A column's dtype, from its `X-Dtype` header (numpy's names or codes). */
export type ColumnDtype = 'int8' | 'int16' | 'int32' | 'float32';

export function parseDtype(header: string | null): ColumnDtype {
  const h = (header ?? '').trim().toLowerCase();
  if (h === 'int8' || h === '|i1' || h === 'i1') return 'int8';
  if (h === 'int16' || h === '<i2' || h === 'i2') return 'int16';
  if (h === 'int32' || h === '<i4' || h === 'i4') return 'int32';
  if (h === 'float32' || h === '<f4' || h === 'f4') return 'float32';
  throw new RangeError(`unsupported X-Dtype ${JSON.stringify(header)}; expected int8, int16, int32 or float32`);
}

/**
 * A per-sample column: float32 values, or category codes (-1 = missing), which the server sends
 * in the narrowest int type that holds them (a million labels: 1 MB as int8) and which are
 * widened here to int32.
 */
export function decodeColumn(buffer: ArrayBuffer, dtypeHeader: string | null): Int32Array | Float32Array {
  const values = readArray(buffer, parseDtype(dtypeHeader));
  return values instanceof Int8Array || values instanceof Int16Array ? new Int32Array(values) : values;
}

/** Finite min and max of an array (NaN-safe); [0, 0] when nothing is finite. */
export function extent(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}
