import type { NeighborMetric, NeighborSpace, RunInfo } from '../api';
import { ErrorState, Skeleton, Spinner } from '../components/common';
import { SampleThumb } from '../components/SampleThumb';
import { useAppSlices } from '../context';
import { useNeighborhood, useNeighbors } from '../hooks';
import { formatPercent, formatScore } from '../lib/format';

const K = 8;

/** Runs over the same samples as `run` (another model on the same data): their neighbourhoods compare. */
export function sameSampleRuns(runs: RunInfo[], run: RunInfo): RunInfo[] {
  return runs.filter(
    (r) => r.id !== run.id && r.n_samples === run.n_samples && (!r.data_fingerprint || !run.data_fingerprint || r.data_fingerprint === run.data_fingerprint),
  );
}

/**
 * The sample view's neighbours: the nearest samples in the chosen layer (thumbnails, distances),
 * how much the neighbourhood changes from layer to layer (k-NN overlap with the layer before),
 * and against another model over the same samples.
 */
export function SampleNeighbors({ id, layer }: { id: number; layer: string }) {
  const { run, runs, state, update } = useAppSlices('neighbors');
  const { nbMetric: metric, nbSpace: space, nbOther: other } = state;
  const setMetric = (m: NeighborMetric) => update({ nbMetric: m }, { replace: true });
  const setSpace = (s: NeighborSpace) => update({ nbSpace: s }, { replace: true });
  const setOther = (r: string | null) => update({ nbOther: r }, { replace: true });
  const k = Math.min(K, run.n_samples - 1);
  const near = useNeighbors(run.id, id, layer, k, metric, space);
  const others = sameSampleRuns(runs, run);
  const otherRun = others.find((r) => r.id === other) ?? null;
  const hood = useNeighborhood(run.id, id, k, metric, space, otherRun?.id ?? null);
  if (k < 1) return null;
  const items = near.data && near.data.layer === layer ? near.data.neighbors : null;

  return (
    <section className="neighbors" data-testid="sample-neighbors" aria-label="Nearest neighbours">
      <div className="neighbors-head">
        <h3>Nearest neighbours</h3>
        <select value={metric} onChange={(e) => setMetric(e.target.value as NeighborMetric)} aria-label="Distance" data-testid="neighbors-metric">
          <option value="cosine">cosine</option>
          <option value="euclidean">euclidean</option>
        </select>
        <select value={space} onChange={(e) => setSpace(e.target.value as NeighborSpace)} aria-label="Searched in" data-testid="neighbors-space">
          <option value="activations">all features (exact)</option>
          <option value="scores">PCA scores (fast)</option>
        </select>
        {near.loading && <Spinner label="Finding neighbours" />}
      </div>
      <p className="muted small">
        The {k} samples nearest #{id} in <span className="mono">{layer}</span>
        {space === 'scores' ? ' on its principal components' : ''}, nearest first; the number is the {metric} distance.
      </p>
      {near.error ? (
        <ErrorState error={near.error} title="Could not find the neighbours" onRetry={near.retry} compact />
      ) : items ? (
        <div className={`neighbors-grid${run.rendering_kind === 'text/plain' ? ' is-text' : ''}`} data-testid="neighbors-grid">
          {items.map((n) => (
            <figure key={n.id} className="neighbor" data-testid="neighbor" data-sample-id={n.id}>
              <SampleThumb id={n.id} label={n.label} />
              <figcaption className="muted small mono">{formatScore(n.distance)}</figcaption>
            </figure>
          ))}
        </div>
      ) : (
        <Skeleton height={64} />
      )}

      <div className="neighbors-head">
        <h3>Across layers</h3>
        {others.length > 0 && (
          <select value={other ?? ''} onChange={(e) => setOther(e.target.value || null)} aria-label="Compare with another model" data-testid="neighbors-other">
            <option value="">no other model</option>
            {others.map((r) => (
              <option key={r.id} value={r.id}>
                vs {r.name}
              </option>
            ))}
          </select>
        )}
        {hood.loading && <Spinner label="Comparing neighbourhoods" />}
      </div>
      <p className="muted small">How many of the {k} neighbours a layer shares with the layer before it (k-NN overlap): low means the layer rearranged this sample's surroundings.</p>
      {hood.error ? (
        <ErrorState error={hood.error} title="Could not compare the neighbourhoods" onRetry={hood.retry} compact />
      ) : hood.data ? (
        <table className="overlap-table" data-testid="neighbors-overlap">
          <thead>
            {hood.data.other && (
              <tr>
                <th colSpan={2} />
                <th scope="colgroup" colSpan={hood.data.other_layers.length} className="overlap-group">
                  shared with {otherRun?.name ?? hood.data.other}
                </th>
              </tr>
            )}
            <tr>
              <th scope="col">layer</th>
              <th scope="col">vs the layer before</th>
              {hood.data.other && hood.data.other_layers.map((l) => (
                <th key={l} scope="col" className="mono" title={`overlap with ${l} of ${otherRun?.name ?? hood.data?.other}`}>
                  {l}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {hood.data.layers.map((row, i) => (
              <tr key={row.layer} className={row.layer === layer ? 'is-current' : undefined}>
                <th scope="row" title={row.layer}>
                  {row.layer}
                </th>
                <td data-testid="overlap-previous">
                  {row.overlap_previous === null ? (
                    <span className="muted">—</span>
                  ) : (
                    <>
                      <span className="overlap-bar" aria-hidden="true">
                        <span style={{ width: `${row.overlap_previous * 100}%` }} />
                      </span>
                      {formatPercent(row.overlap_previous, 0)}
                    </>
                  )}
                </td>
                {hood.data?.other &&
                  hood.data.overlap[i]?.map((v, j) => (
                    <td key={j} className="overlap-cell" style={{ background: `color-mix(in srgb, var(--accent) ${Math.round(v * 60)}%, transparent)` }} data-testid="overlap-other">
                      {formatPercent(v, 0)}
                    </td>
                  ))}
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <Skeleton height={60} />
      )}
    </section>
  );
}
