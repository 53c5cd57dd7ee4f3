import { useRef } from 'react';
import type { RunInfo, SampleRef, ShiftRow } from '../../api';
import { ErrorState, Skeleton } from '../../components/common';
import { PngButton } from '../../components/PngButton';
import { RunThumb } from '../../components/RunThumb';
import { useDatasetExtremes, useFilterParam } from '../../hooks';
import { labelOrder } from '../../lib/runInfo';

const N_PER_END = 6;

/** The samples at both ends of the picked component, A's beside B's. */
export function EndsCard({ runA, runB, layer, row }: { runA: RunInfo; runB: RunInfo; layer: string; row: ShiftRow }) {
  const ref = useRef<HTMLElement>(null);
  const ends = useDatasetExtremes(runA.id, runB.id, layer, row.index, N_PER_END, useFilterParam());
  const d = ends.data;
  return (
    <section className="card datasets-card" ref={ref} data-testid="datasets-ends">
      <div className="card-head">
        <h3>Samples at each end of {row.name}</h3>
        <span className="muted small">A's own extremes beside B's, on A's component</span>
        <div className="toolbar-spacer" />
        <PngButton target={ref} name={`${runA.id}-vs-${runB.id}-${layer}-${row.name}-ends`} title="Download the samples as PNG" />
      </div>
      {ends.error ? (
        <ErrorState error={ends.error} title="Could not load the samples" onRetry={ends.retry} compact />
      ) : (
        <div className="ends-grid">
          <span />
          <span className="ends-col-head">
            <span className="run-tag run-tag-a">A</span> {runA.name}
          </span>
          <span className="ends-col-head">
            <span className="run-tag run-tag-b">B</span> {runB.name}
          </span>
          <span className="end-tag end-tag-high">▲ high</span>
          <EndStrip run={runA} samples={d?.reference.high ?? null} testId="ends-a-high" />
          <EndStrip run={runB} samples={d?.other.high ?? null} testId="ends-b-high" />
          <span className="end-tag end-tag-low">▼ low</span>
          <EndStrip run={runA} samples={d?.reference.low ?? null} testId="ends-a-low" />
          <EndStrip run={runB} samples={d?.other.low ?? null} testId="ends-b-low" />
        </div>
      )}
    </section>
  );
}

function EndStrip({ run, samples, testId }: { run: RunInfo; samples: SampleRef[] | null; testId: string }) {
  const labels = labelOrder(run);
  return (
    <div className={`end-strip${run.rendering_kind === 'text/plain' ? ' is-text' : ''}`} data-testid={testId}>
      {samples
        ? samples.map((s) => <RunThumb key={s.id} run={run} sample={s} labels={labels} />)
        : Array.from({ length: N_PER_END }, (_, i) => <Skeleton key={i} className="sk-thumb pair-sk" />)}
    </div>
  );
}
