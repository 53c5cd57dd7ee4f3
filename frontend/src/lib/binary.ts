/** Decoding of the server's binary answers (little-endian float32 / int32 arrays). */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

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

/** A row-major float32 (N, K) matrix from its bytes and X-Shape header. */
export function decodeMatrix(buffer: ArrayBuffer, shapeHeader: string | null): Matrix {
  const [rows, cols] = parseShape(shapeHeader);
  const data = readFloat32(buffer);
  if (data.length !== rows * cols) {
    throw new RangeError(`X-Shape says ${rows}x${cols} = ${rows * cols} values, the body has ${data.length}`);
  }
  return { data, rows, cols };
}

/** Column `j` of a row-major matrix. */
export function matrixColumn(m: Matrix, j: number): Float32Array {
  if (j < 0 || j >= m.cols) throw new RangeError(`column ${j} is out of range (0..${m.cols - 1})`);
  const out = new Float32Array(m.rows);
  for (let i = 0; i < m.rows; i += 1) out[i] = m.data[i * m.cols + j];
  return out;
}

export type ColumnDtype = 'int32' | 'float32';

export function parseDtype(header: string | null): ColumnDtype {
  const h = (header ?? '').trim().toLowerCase();
  if (h === 'int32' || h === '<i4' || h === 'i4') return 'int32';
  if (h === 'float32' || h === '<f4' || h === 'f4') return 'float32';
  throw new RangeError(`unsupported X-Dtype ${JSON.stringify(header)}; expected int32 or float32`);
}

/** A per-sample column: int32 category codes (-1 = missing) or float32 values. */
export function decodeColumn(buffer: ArrayBuffer, dtypeHeader: string | null): Int32Array | Float32Array {
  return parseDtype(dtypeHeader) === 'int32' ? readInt32(buffer) : readFloat32(buffer);
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
