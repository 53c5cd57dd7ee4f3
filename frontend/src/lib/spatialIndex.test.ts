import { describe, expect, it } from 'vitest';
import { buildSpatialIndex, NODE_SIZE, rangeOf, spatialIndexOf } from './spatialIndex';

/** Deterministic pseudo-random points (a linear congruential generator), with ties. */
function points(n: number, seed = 1): { x: Float32Array; y: Float32Array } {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i += 1) {
    x[i] = Math.round(next() * 200) / 100 - 1; // ties on purpose
    y[i] = next() * 2 - 1;
  }
  return { x, y };
}

function bruteRange(x: Float32Array, y: Float32Array, box: [number, number, number, number]): number[] {
  const [x0, y0, x1, y1] = box;
  const out: number[] = [];
  for (let i = 0; i < x.length; i += 1) if (x[i] >= x0 && x[i] <= x1 && y[i] >= y0 && y[i] <= y1) out.push(i);
  return out;
}

describe('buildSpatialIndex', () => {
  it('writes the KDBush v1 header regl-scatterplot reads: magic, version, float32 coords, node size, count', () => {
    const { x, y } = points(70_000);
    const data = buildSpatialIndex(x, y);
    expect(Array.from(new Uint8Array(data, 0, 2))).toEqual([0xdb, (1 << 4) + 7]);
    expect(new Uint16Array(data, 2, 1)[0]).toBe(NODE_SIZE);
    expect(new Uint32Array(data, 4, 1)[0]).toBe(70_000);
    // ids (uint32 above 65535 points) then the coordinates, as KDBush lays them out
    expect(data.byteLength).toBe(8 + 70_000 * 4 + 70_000 * 2 * 4);
    const ids = new Uint32Array(data, 8, 70_000);
    expect(new Set(ids).size).toBe(70_000);
    const coords = new Float32Array(data, 8 + 70_000 * 4, 140_000);
    for (const k of [0, 12_345, 69_999]) {
      expect(coords[2 * k]).toBe(x[ids[k]]);
      expect(coords[2 * k + 1]).toBe(y[ids[k]]);
    }
  });

  it('finds exactly the points in a box, as a scan of every point does', () => {
    for (const n of [0, 1, 17, 5_000, 70_000]) {
      const { x, y } = points(n, n + 3);
      const data = buildSpatialIndex(x, y);
      for (const box of [
        [-1, -1, 1, 1],
        [-0.3, -0.2, 0.1, 0.25],
        [0.5, 0.5, 0.5, 1],
        [2, 2, 3, 3],
      ] as [number, number, number, number][]) {
        expect(rangeOf(data, ...box).sort((a, b) => a - b)).toEqual(bruteRange(x, y, box));
      }
    }
  });

  it('refuses arrays of different lengths', () => {
    expect(() => buildSpatialIndex(new Float32Array(3), new Float32Array(2))).toThrow('3 x values but 2 y values');
  });

  it('leaves the caller its arrays when built asynchronously', async () => {
    const { x, y } = points(1_000);
    const data = await spatialIndexOf(x, y);
    expect(x.length).toBe(1_000);
    expect(new Uint8Array(data)).toEqual(new Uint8Array(buildSpatialIndex(x, y)));
  });
});
