/** Builds the scatter's spatial index off the main thread (see spatialIndex.ts). */
import { buildSpatialIndex } from './spatialIndex';

self.onmessage = (e: MessageEvent<{ x: Float32Array; y: Float32Array }>) => {
  const data = buildSpatialIndex(e.data.x, e.data.y);
  (self as unknown as Worker).postMessage(data, [data]);
};
