import { useRef } from 'react';
import { isRefusal, type CKATable, type GalleryComponent, type MatchedPair, type RunInfo, type SampleRef } from '../api';
import { EmptyState, ErrorState, Skeleton, Spinner } from '../components/common';
import { PngButton } from '../components/PngButton';
import { RunPairPicker } from '../components/RunPairPicker';
import { RunThumb } from '../components/RunThumb';
import { useAppSlices } from '../context';
import { useAssociations, useCka, useGallery, useMatched } from '../hooks';
import { ckaColor, formatStatistic, signedPcName, textOn } from '../lib/analysis';
import { dominantLabel } from '../lib/labels';
import { formatCount, formatPercent, pcName } from '../lib/format';
import { labelOrder } from '../lib/runInfo';
import { compatiblePair, modelPairProblem, replacedPairNotice } from '../lib/pairs';

const N_PER_END = 4;

/** Two runs over the same samples: linear CKA between their layers, then matched components. */
export function CompareView() {
  const { runs, state, update } = useAppSlices('compare');
  const ids = runs.map((r) => r.id);
  // only pairs over the same samples can be compared; without any, say so instead of failing
  const pick = compatiblePair(runs, state.runA, state.runB, modelPairProblem);
  if (!pick && ids.length >= 2) {
    return (
      <div className="view compare-view" data-testid="compare">
        <CompareTitle />
        <EmptyState title="No two runs cover the same samples" testId="compare-no-pair">
          Comparing models needs two runs over the same samples in the same order — e.g. a trained and an untrained model
          explored on one data set. The served runs ({runs.map((r) => r.name).join(', ')}) each cover other samples.
        </EmptyState>
      </div>
    );
  }
  if (!pick) {
    return (
      <div className="view compare-view" data-testid="compare">
        <CompareTitle />
        <EmptyState title="Comparing models needs two runs" testId="compare-needs-two">
          The server serves one run. Serve two runs over the same samples — e.g. a trained and an untrained model — and this
          view shows how their layers relate (linear CKA) and which component of one is which component of the other:{' '}
          <code>embedding-explorer serve runs/trained runs/untrained</code>.
        </EmptyState>
      </div>
    );
  }
  const [idA, idB] = pick;
  const runA = runs.find((r) => r.id === idA)!;
  const runB = runs.find((r) => r.id === idB)!;
  const notice = replacedPairNotice(runs, state.runA, state.runB, pick, modelPairProblem);
  return (
    <div className="view compare-view" data-testid="compare">
      {notice && (
        <div className="notice" role="status" data-testid="pair-notice">
          {notice} Showing “{runA.name}” and “{runB.name}”.
        </div>
      )}
      <div className="toolbar">
        <CompareTitle />
        <div className="toolbar-spacer" />
        <RunPairPicker
          runs={runs}
          a={idA}
          b={idB}
          onChange={(a, b, how) => update(how === 'swap' ? { runA: a, runB: b, cellA: state.cellB, cellB: state.cellA, pair: null } : { runA: a, runB: b, cellA: null, cellB: null, pair: null })}
          testIdPrefix="compare"
          ariaA="Run A"
          ariaB="Run B"
          swapTitle="Swap A and B"
          swapAria="Swap runs A and B"
          problem={modelPairProblem}
        />
      </div>
      <CkaCard runA={runA} runB={runB} />
    </div>
  );
}

function CompareTitle() {
  return (
    <div className="toolbar-title">
      <h2>Compare two models</h2>
      <span className="muted">Linear CKA between every layer of A and every layer of B; open a cell to pair their components.</span>
    </div>
  );
}

function CkaCard({ runA, runB }: { runA: RunInfo; runB: RunInfo }) {
  const { state, update } = useAppSlices('compare');
  const cka = useCka(runA.id, runB.id);
  const cellA = cka.data && state.cellA && cka.data.layers_a.includes(state.cellA) ? state.cellA : null;
  const cellB = cka.data && state.cellB && cka.data.layers_b.includes(state.cellB) ? state.cellB : null;
  const cardRef = useRef<HTMLElement>(null);
  return (
    <>
      <section className="card cka-card" ref={cardRef}>
        <div className="card-head">
          <h3>Layer similarity (linear CKA)</h3>
          <span className="muted small">0: unrelated · 1: the same representation up to rotation and scale</span>
          <div className="toolbar-spacer" />
          <PngButton target={cardRef} name={`${runA.id}-vs-${runB.id}-cka`} title="Download the CKA table as PNG" />
        </div>
        {cka.error ? (
          <ErrorState error={cka.error} title={`Could not compare “${runA.name}” with “${runB.name}”`} onRetry={isRefusal(cka.error) ? undefined : cka.retry} />
        ) : cka.data ? (
          <CkaHeatmap table={cka.data} runA={runA} runB={runB} cellA={cellA} cellB={cellB} onPick={(a, b) => update({ cellA: a, cellB: b, pair: null })} />
        ) : (
          <div className="cka-loading" aria-busy="true" data-testid="cka-loading">
            <Spinner label="Computing CKA" />
            <span className="muted">
              Computing linear CKA between the {runA.layers.length} layers of A and the {runB.layers.length} layers of B over{' '}
              {formatCount(runA.n_samples)} samples — a few seconds the first time…
            </span>
          </div>
        )}
      </section>
      {cka.data &&
        (cellA && cellB ? (
          <MatchedCard runA={runA} runB={runB} layerA={cellA} layerB={cellB} />
        ) : (
          <EmptyState title="Open a cell to match components" testId="matched-hint">
            Click a cell of the table: the components of those two layers are paired by their correlation over the shared samples,
            each pair with its extreme samples side by side.
          </EmptyState>
        ))}
    </>
  );
}

function CkaHeatmap({ table, runA, runB, cellA, cellB, onPick }: { table: CKATable; runA: RunInfo; runB: RunInfo; cellA: string | null; cellB: string | null; onPick: (a: string, b: string) => void }) {
  const cols = table.layers_b.length;
  return (
    <div className="cka-body">
      <div className="cka-scroller">
        <div className="cka-grid" style={{ gridTemplateColumns: `auto repeat(${cols}, minmax(46px, 1fr))` }} data-testid="cka-heatmap" role="grid" aria-label={`Linear CKA: layers of ${runA.name} (rows) by layers of ${runB.name} (columns)`}>
          <div className="cka-corner">
            <span className="run-tag run-tag-a">A</span> {runA.name} ↓ &nbsp;
            <span className="run-tag run-tag-b">B</span> {runB.name} →
          </div>
          {table.layers_b.map((b) => (
            <div key={b} className={`cka-col-head mono${b === cellB ? ' on' : ''}`} title={b}>
              {b}
            </div>
          ))}
          {table.layers_a.map((a, i) => (
            <div key={a} className="cka-row" role="row">
              <div className={`cka-row-head mono${a === cellA ? ' on' : ''}`} title={a}>
                {a}
              </div>
              {table.cka[i].map((v, j) => {
                const b = table.layers_b[j];
                const bg = ckaColor(v);
                const on = a === cellA && b === cellB;
                return (
                  <button
                    key={b}
                    type="button"
                    role="gridcell"
                    className={`cka-cell${on ? ' on' : ''}`}
                    style={{ background: bg, color: textOn(bg) }}
                    onClick={() => onPick(a, b)}
                    aria-pressed={on}
                    title={`A ${a} × B ${b}: CKA = ${v === null ? '–' : v.toFixed(3)}. Click to match their components.`}
                    data-testid="cka-cell"
                    data-a={a}
                    data-b={b}
                  >
                    {v === null ? '–' : v.toFixed(2)}
                  </button>
                );
              })}
            </div>
          ))}
        </div>
      </div>
      <div className="legend legend-numeric cka-legend">
        <div className="legend-title">CKA</div>
        <div className="ramp" style={{ background: `linear-gradient(to right, ${Array.from({ length: 11 }, (_, i) => `${ckaColor(i / 10)} ${i * 10}%`).join(', ')})` }} aria-hidden="true" />
        <div className="ramp-labels">
          <span>0</span>
          <span>0.5</span>
          <span>1</span>
        </div>
      </div>
    </div>
  );
}

function MatchedCard({ runA, runB, layerA, layerB }: { runA: RunInfo; runB: RunInfo; layerA: string; layerB: string }) {
  const { state, update } = useAppSlices('compare');
  const matched = useMatched(runA.id, layerA, runB.id, layerB);
  const galA = useGallery(runA.id, layerA, N_PER_END, 'pca');
  const galB = useGallery(runB.id, layerB, N_PER_END, 'pca');
  // how much each component goes with the labels (η²), for the runs that have them
  const assocA = useAssociations(runA.id, layerA, runA.labels.present);
  const assocB = useAssociations(runB.id, layerB, runB.labels.present);
  const compOf = (g: typeof galA, pc: number) => g.data?.components.find((c) => c.index === pc) ?? null;
  const eta2Of = (a: typeof assocA, pc: number) => {
    const col = a.data?.columns.find((c) => c.name === 'label' && c.statistic === 'eta2');
    return col ? col.values[pc] ?? null : undefined;
  };
  const error = matched.error ?? galA.error ?? galB.error;
  const cardRef = useRef<HTMLElement>(null);
  return (
    <section className="card matched-card" data-testid="matched-pairs" ref={cardRef}>
      <div className="card-head">
        <h3>
          <span className="run-tag run-tag-a">A</span> <span className="mono">{layerA}</span> ↔ <span className="run-tag run-tag-b">B</span>{' '}
          <span className="mono">{layerB}</span>
        </h3>
        <span className="muted small">components paired by largest |r| (one-to-one); B's ends are flipped where r is negative, so the rows line up</span>
        <div className="toolbar-spacer" />
        <PngButton target={cardRef} name={`${runA.id}-${layerA}-vs-${runB.id}-${layerB}-matched`} title="Download the matched components as PNG" />
      </div>
      {error ? (
        <ErrorState error={error} title="Could not match the components" onRetry={() => [matched, galA, galB].forEach((x) => x.error && x.retry())} />
      ) : !matched.data ? (
        <div className="matched-list" aria-busy="true">
          {Array.from({ length: 4 }, (_, i) => (
            <Skeleton key={i} height={64} />
          ))}
        </div>
      ) : matched.data.pairs.length === 0 ? (
        <EmptyState title="No components to pair" />
      ) : (
        <div className="matched-list">
          <div className="matched-head" aria-hidden="true">
            <span>pair</span>
            <span>
              <span className="run-tag run-tag-a">A</span> {runA.name}: <span className="end-tag end-tag-low">▼ low</span> … <span className="end-tag end-tag-high">▲ high</span>
            </span>
            <span>
              <span className="run-tag run-tag-b">B</span> {runB.name}, aligned: <span className="end-tag end-tag-low">▼</span> … <span className="end-tag end-tag-high">▲</span>
            </span>
          </div>
          {matched.data.pairs.map((p) => (
            <PairRow
              key={p.component_a}
              pair={p}
              runA={runA}
              runB={runB}
              compA={compOf(galA, p.component_a)}
              compB={compOf(galB, p.component_b)}
              eta2A={eta2Of(assocA, p.component_a)}
              eta2B={eta2Of(assocB, p.component_b)}
              selected={state.pair === p.component_a}
              onSelect={() => update({ pair: state.pair === p.component_a ? null : p.component_a }, { replace: true })}
            />
          ))}
        </div>
      )}
    </section>
  );
}

interface PairRowProps {
  pair: MatchedPair;
  runA: RunInfo;
  runB: RunInfo;
  compA: GalleryComponent | null;
  compB: GalleryComponent | null;
  /** η² of each component with the labels: undefined where the run has none, null where undefined */
  eta2A?: number | null;
  eta2B?: number | null;
  selected: boolean;
  onSelect: () => void;
}

function PairRow({ pair, runA, runB, compA, compB, eta2A, eta2B, selected, onSelect }: PairRowProps) {
  const flipped = pair.sign < 0;
  // B's ends in the order that lines up with A's low … high
  const bLow = compB ? (flipped ? compB.high : compB.low) : null;
  const bHigh = compB ? (flipped ? compB.low : compB.high) : null;
  return (
    <div className={`matched-pair${selected ? ' on' : ''}`} data-testid="matched-pair" data-a={pair.component_a} data-b={pair.component_b} data-sign={pair.sign}>
      <button type="button" className="pair-text" onClick={onSelect} aria-pressed={selected} title="Highlight this pair (kept in the link)">
        <span className="pair-line">
          <span className="run-tag run-tag-a">A</span> <strong>{pcName(pair.component_a)}</strong> <span className="muted">({formatPercent(pair.ratio_a)})</span>
        </span>
        <span className="pair-line">
          <span className="pair-tilde">~</span> <span className="run-tag run-tag-b">B</span> <strong className={flipped ? 'sign-neg' : undefined}>{signedPcName(pair.component_b, pair.sign)}</strong>{' '}
          <span className="muted">({formatPercent(pair.ratio_b)})</span>
        </span>
        <span className="pair-r">
          <span className="pair-r-track">
            <span className="pair-r-fill" style={{ width: `${Math.min(1, pair.r) * 100}%` }} />
          </span>
          |r| = {pair.r.toFixed(2)}
        </span>
      </button>
      <Ends run={runA} low={compA?.low ?? null} high={compA?.high ?? null} eta2={eta2A} testId="pair-thumbs-a" />
      <Ends run={runB} low={bLow} high={bHigh} eta2={eta2B} testId="pair-thumbs-b" flippedNote={flipped ? `−${pcName(pair.component_b)}: ${runB.name}'s high end is shown on the left` : undefined} />
    </div>
  );
}

function Ends({ run, low, high, eta2, testId, flippedNote }: { run: RunInfo; low: SampleRef[] | null; high: SampleRef[] | null; eta2?: number | null; testId: string; flippedNote?: string }) {
  const labels = labelOrder(run);
  const cell = (samples: SampleRef[] | null, end: 'low' | 'high') => {
    const dom = samples && labels.length ? dominantLabel(samples.map((s) => (s.label === null ? null : String(s.label)))) : null;
    return (
      <div className={`pair-end pair-end-${end}`}>
        <div className="pair-end-thumbs">
          {samples
            ? // the most extreme at the outer edge: low ends read right-to-left
              (end === 'low' ? samples.slice().reverse() : samples).map((s) => <RunThumb key={s.id} run={run} sample={s} labels={labels} />)
            : Array.from({ length: N_PER_END }, (_, i) => <Skeleton key={i} className="sk-thumb pair-sk" />)}
        </div>
        <span className="pair-tally" data-testid="pair-tally" title={dom ? `${dom.count} of ${dom.total} samples at this end are ${dom.label}` : undefined}>
          {dom ? dom.text : '\u00a0'}
        </span>
      </div>
    );
  };
  return (
    <div className="pair-ends-box">
      <div className="pair-ends" data-testid={testId} title={flippedNote}>
        {cell(low, 'low')}
        <span className="pair-axis" aria-hidden="true" />
        {cell(high, 'high')}
      </div>
      {eta2 !== undefined && (
        <span className="pair-eta2" data-testid="pair-eta2" title="How much of this component's variance the labels explain">
          labels {formatStatistic('eta2', eta2)}
        </span>
      )}
    </div>
  );
}
