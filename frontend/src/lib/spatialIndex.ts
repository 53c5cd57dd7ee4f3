/**
 * The scatter's spatial index (a KDBush v1 buffer, the format regl-scatterplot's
 * `draw(points, { spatialIndex })` reads) built from two typed arrays.
 *
 * regl-scatterplot builds this index itself inside `draw()`, from an array of point arrays it
 * structured-clones into a worker: at a million points that is most of the time from data to
 * pixels. Built here from transferred Float32Arrays in our own worker (spatialIndex.worker.ts)
 * while the main thread prepares the draw. The kd-sort is KDBush's (ISC, Vladimir Agafonkin),
 * with float32 coordinates.
 */

const HEADER_BYTES = 8;
const FORMAT_VERSION = 1;
const FLOAT32_TYPE = 7; // KDBush's index of Float32Array in its array types
export const NODE_SIZE = 16;

/** The KDBush buffer of the points (x[i], y[i]), kd-sorted with leaves of `nodeSize` points. */
export function buildSpatialIndex(x: Float32Array, y: Float32Array, nodeSize = NODE_SIZE): ArrayBuffer {
  const n = x.length;
  if (y.length !== n) throw new Error(`spatial index: ${n} x values but ${y.length} y values`);
  const Ids = n < 65536 ? Uint16Array : Uint32Array;
  const idsBytes = n * Ids.BYTES_PER_ELEMENT;
  const pad = (8 - (idsBytes % 8)) % 8;
  const data = new ArrayBuffer(HEADER_BYTES + idsBytes + pad + n * 2 * 4);
  new Uint8Array(data, 0, 2).set([0xdb, (FORMAT_VERSION << 4) + FLOAT32_TYPE]);
  new Uint16Array(data, 2, 1)[0] = nodeSize;
  new Uint32Array(data, 4, 1)[0] = n;
  const ids = new Ids(data, HEADER_BYTES, n);
  const coords = new Float32Array(data, HEADER_BYTES + idsBytes + pad, n * 2);
  for (let i = 0; i < n; i += 1) {
    ids[i] = i;
    coords[2 * i] = x[i];
    coords[2 * i + 1] = y[i];
  }
  if (n > 0) sort(ids, coords, nodeSize, 0, n - 1, 0);
  return data;
}

/** An index of no points: the first draw's, while the real one is built (hover and lasso find nothing). */
export function emptySpatialIndex(): ArrayBuffer {
  return buildSpatialIndex(new Float32Array(0), new Float32Array(0));
}

/** The ids of the points in [minX, maxX] x [minY, maxY] (a search of the buffer, as KDBush's `range`). */
export function rangeOf(data: ArrayBuffer, minX: number, minY: number, maxX: number, maxY: number): number[] {
  const nodeSize = new Uint16Array(data, 2, 1)[0];
  const n = new Uint32Array(data, 4, 1)[0];
  const Ids = n < 65536 ? Uint16Array : Uint32Array;
  const idsBytes = n * Ids.BYTES_PER_ELEMENT;
  const ids = new Ids(data, HEADER_BYTES, n);
  const coords = new Float32Array(data, HEADER_BYTES + idsBytes + ((8 - (idsBytes % 8)) % 8), n * 2);
  const inside = (i: number) => coords[2 * i] >= minX && coords[2 * i] <= maxX && coords[2 * i + 1] >= minY && coords[2 * i + 1] <= maxY;
  const found: number[] = [];
  const stack = n > 0 ? [0, n - 1, 0] : [];
  while (stack.length) {
    const axis = stack.pop() ?? 0;
    const right = stack.pop() ?? 0;
    const left = stack.pop() ?? 0;
    if (right - left <= nodeSize) {
      for (let i = left; i <= right; i += 1) if (inside(i)) found.push(ids[i]);
      continue;
    }
    const m = (left + right) >> 1;
    if (inside(m)) found.push(ids[m]);
    const v = coords[2 * m + axis];
    if ((axis === 0 ? minX : minY) <= v) stack.push(left, m - 1, 1 - axis);
    if ((axis === 0 ? maxX : maxY) >= v) stack.push(m + 1, right, 1 - axis);
  }
  return found;
}

type Ids = Uint16Array | Uint32Array;

function sort(ids: Ids, coords: Float32Array, nodeSize: number, left: number, right: number, axis: number): void {
  if (right - left <= nodeSize) return;
  const m = (left + right) >> 1;
  select(ids, coords, m, left, right, axis);
  sort(ids, coords, nodeSize, left, m - 1, 1 - axis);
  sort(ids, coords, nodeSize, m + 1, right, 1 - axis);
}

/** Floyd-Rivest selection: items left of k are not greater than the k-th on `axis`, those right not smaller. */
function select(ids: Ids, coords: Float32Array, k: number, left: number, right: number, axis: number): void {
  while (right > left) {
    if (right - left > 600) {
      const n = right - left + 1;
      const m = k - left + 1;
      const z = Math.log(n);
      const s = 0.5 * Math.exp((2 * z) / 3);
      const sd = 0.5 * Math.sqrt((z * s * (n - s)) / n) * (m - n / 2 < 0 ? -1 : 1);
      select(ids, coords, k, Math.max(left, Math.floor(k - (m * s) / n + sd)), Math.min(right, Math.floor(k + ((n - m) * s) / n + sd)), axis);
    }
    const t = coords[2 * k + axis];
    let i = left;
    let j = right;
    swapItem(ids, coords, left, k);
    if (coords[2 * right + axis] > t) swapItem(ids, coords, left, right);
    while (i < j) {
      swapItem(ids, coords, i, j);
      i += 1;
      j -= 1;
      while (coords[2 * i + axis] < t) i += 1;
      while (coords[2 * j + axis] > t) j -= 1;
    }
    if (coords[2 * left + axis] === t) swapItem(ids, coords, left, j);
    else {
      j += 1;
      swapItem(ids, coords, j, right);
    }
    if (j <= k) left = j + 1;
    if (k <= j) right = j - 1;
  }
}

function swapItem(ids: Ids, coords: Float32Array, i: number, j: number): void {
  const id = ids[i];
  ids[i] = ids[j];
  ids[j] = id;
  const cx = coords[2 * i];
  coords[2 * i] = coords[2 * j];
  coords[2 * j] = cx;
  const cy = coords[2 * i + 1];
  coords[2 * i + 1] = coords[2 * j + 1];
  coords[2 * j + 1] = cy;
}

/**
 * The index of (x, y) built off the main thread (a module worker; on the main thread where
 * workers are missing, as in unit tests). The arrays are copied, so the caller keeps its own.
 */
export function spatialIndexOf(x: Float32Array, y: Float32Array): Promise<ArrayBuffer> {
  if (typeof Worker === 'undefined') return Promise.resolve(buildSpatialIndex(x, y));
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./spatialIndex.worker.ts', import.meta.url), { type: 'module', name: 'spatial-index' });
    worker.onmessage = (e: MessageEvent<ArrayBuffer>) => {
      resolve(e.data);
      worker.terminate();
    };
    worker.onerror = (e) => {
      reject(new Error(`building the scatter's spatial index failed: ${e.message}`));
      worker.terminate();
    };
    const xs = x.slice();
    const ys = y.slice();
    worker.postMessage({ x: xs, y: ys }, [xs.buffer, ys.buffer]);
  });
}
