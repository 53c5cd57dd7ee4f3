/** Decoding of the server's binary answers (little-endian float32 / int32 arrays, uint16 score codes). */
import { paddedDomain, type Normalized } from './scale';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function readArray<T extends Float32Array | Int32Array>(
  buffer: ArrayBuffer,
  make: (b: ArrayBuffer | number) => T,
  get: (view: DataView, offset: number) => number,
): T {
  if (buffer.byteLength % 4 !== 0) {
    throw new RangeError(`binary answer of ${buffer.byteLength} bytes is not a whole number of 4-byte values`);
  }
  if (LITTLE_ENDIAN) return make(buffer);
  const out = make(buffer.byteLength / 4);
  const view = new DataView(buffer);
  for (let i = 0; i < out.length; i += 1) out[i] = get(view, i * 4);
  return out;
}

export function readFloat32(buffer: ArrayBuffer): Float32Array {
  return readArray(buffer, (b) => (typeof b === 'number' ? new Float32Array(b) : new Float32Array(b)), (v, o) =>
    v.getFloat32(o, true),
  );
}

export function readInt32(buffer: ArrayBuffer): Int32Array {
  return readArray(buffer, (b) => (typeof b === 'number' ? new Int32Array(b) : new Int32Array(b)), (v, o) =>
    v.getInt32(o, true),
  );
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
  let codes = new Uint16Array(buffer);
  if (!LITTLE_ENDIAN) {
    const view = new DataView(buffer);
    codes = Uint16Array.from({ length: rows * cols }, (_, i) => view.getUint16(i * 2, true));
  }
  return { codes, rows, cols, bounds: parseBounds(boundsHeader, cols) };
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

export type ColumnDtype = 'int8' | 'int16' | 'int32' | 'float32';

export function parseDtype(header: string | null): ColumnDtype {
  const h = (header ?? '').trim().toLowerCase();
  if (h === 'int8' || h === '|i1' || h === 'i1') return 'int8';
  if (h === 'int16' || h === '<i2' || h === 'i2') return 'int16';
  if (h === 'int32' || h === '<i4' || h === 'i4') return 'int32';
  if (h === 'float32' || h === '<f4' || h === 'f4') return 'float32';
  throw new RangeError(`unsupported X-Dtype ${JSON.stringify(header)}; expected int8, int16, int32 or float32`);
}

/** Little-endian int16 values widened to int32. */
function readInt16(buffer: ArrayBuffer): Int32Array {
  if (buffer.byteLength % 2 !== 0) throw new RangeError(`binary answer of ${buffer.byteLength} bytes is not a whole number of 2-byte values`);
  if (LITTLE_ENDIAN) return Int32Array.from(new Int16Array(buffer));
  const view = new DataView(buffer);
  return Int32Array.from({ length: buffer.byteLength / 2 }, (_, i) => view.getInt16(i * 2, true));
}

/**
 * A per-sample column: float32 values, or category codes (-1 = missing), which the server sends
 * in the narrowest int type that holds them (a million labels: 1 MB as int8) and which are
 * widened here to int32.
 */
export function decodeColumn(buffer: ArrayBuffer, dtypeHeader: string | null): Int32Array | Float32Array {
  const dtype = parseDtype(dtypeHeader);
  if (dtype === 'int8') return Int32Array.from(new Int8Array(buffer));
  if (dtype === 'int16') return readInt16(buffer);
  return dtype === 'int32' ? readInt32(buffer) : readFloat32(buffer);
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
