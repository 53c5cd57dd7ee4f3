/** A minimal linear scale with the D3 API regl-scatterplot expects (domain/range get-set). */

export interface LinearScale {
  (value: number): number;
  domain(): [number, number];
  domain(d: readonly number[]): LinearScale;
  range(): [number, number];
  range(r: readonly number[]): LinearScale;
  invert(px: number): number;
  copy(): LinearScale;
}

export function linearScale(domain: readonly number[] = [0, 1], range: readonly number[] = [0, 1]): LinearScale {
  let d: [number, number] = [domain[0], domain[1]];
  let r: [number, number] = [range[0], range[1]];
  const scale = ((v: number) => {
    const span = d[1] - d[0];
    return r[0] + (span === 0 ? 0.5 : (v - d[0]) / span) * (r[1] - r[0]);
  }) as LinearScale;
  scale.domain = ((next?: readonly number[]) => {
    if (next === undefined) return [d[0], d[1]];
    d = [next[0], next[1]];
    return scale;
  }) as LinearScale['domain'];
  scale.range = ((next?: readonly number[]) => {
    if (next === undefined) return [r[0], r[1]];
    r = [next[0], next[1]];
    return scale;
  }) as LinearScale['range'];
  scale.invert = (px: number) => {
    const span = r[1] - r[0];
    return d[0] + (span === 0 ? 0.5 : (px - r[0]) / span) * (d[1] - d[0]);
  };
  scale.copy = () => linearScale(d, r);
  return scale;
}

export interface Normalized {
  /** Values mapped to [-1, 1] (normalized device coordinates). */
  ndc: Float32Array;
  /** The data interval that [-1, 1] shows. */
  domain: [number, number];
}

/** The data interval [-1, 1] shows for values from `lo` to `hi`: their extent padded by `pad` on each side. */
export function paddedDomain(lo: number, hi: number, pad = 0.05): [number, number] {
  let span = hi - lo;
  if (!(span > 0)) span = Math.abs(lo) || 1;
  return [lo - span * pad, lo + span * (1 + pad)];
}
