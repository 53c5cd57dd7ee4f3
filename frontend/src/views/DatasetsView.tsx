import { useEffect, useRef, useState } from 'react';
import { ApiError, type DatasetHistogram, type DatasetShift, type RunInfo, type SampleRef, type ShiftRow } from '../api';
import { EmptyState, ErrorState, Skeleton, Spinner } from '../components/common';
import { PngButton } from '../components/PngButton';
import { useSize } from '../components/useSize';
import { useApp } from '../context';
import { useDatasetExtremes, useDatasetHistogram, useDatasetShift } from '../hooks';
import { niceTicks } from '../lib/colors';
import { datasetPair, describeShift, formatMean, shares, sharedLayers, sortShiftRows } from '../lib/datasets';
import { formatCount, formatPercent, formatScore, formatTick, tickStep } from '../lib/format';
import { labelOrder } from '../lib/runInfo';
import type { ShiftSort } from '../lib/urlState';
import { RunThumb } from './CompareView';

const BINS = 40;
const N_PER_END = 6;

/** One model over two data sets: which components moved, how far, and the samples at each end. */
export function DatasetsView() {
  const { runs, state, update } = useApp();
  // the layers the server says compare, per pair (a layer reduced differently in the two runs does not)
  const [comparable, setComparable] = useState<{ pair: string; layers: string[] } | null>(null);
  const pair = datasetPair(runs, state.dsA, state.dsB);
  if (!pair) {
    return (
      <div className="view datasets-view" data-testid="datasets">
        <DatasetsTitle />
        <EmptyState title="Comparing data sets needs two runs" testId="datasets-needs-two">
          Serve two runs of the same model over different data — e.g. a test set and a shifted or out-of-distribution set — and
          this view ranks the components by how far the second set moved: <code>embedding-explorer serve runs/test runs/shifted</code>.
        </EmptyState>
      </div>
    );
  }
  const [idA, idB] = pair;
  const runA = runs.find((r) => r.id === idA)!;
  const runB = runs.find((r) => r.id === idB)!;
  const layers = sharedLayers(runA, runB);
  const pairKey = `${idA}\u0000${idB}`;
  const differs = (l: string) => comparable !== null && comparable.pair === pairKey && !comparable.layers.includes(l);
  const layer = state.dsLayer && layers.includes(state.dsLayer) ? state.dsLayer : layers[layers.length - 1] ?? null;
  const runOptions = runs.map((r) => (
    <option key={r.id} value={r.id}>
      {r.name}
    </option>
  ));
  return (
    <div className="view datasets-view" data-testid="datasets">
      <div className="toolbar">
        <DatasetsTitle />
        <div className="toolbar-spacer" />
        <div className="datasets-pickers">
          <label className="field" title="The reference: its components are the axes">
            <span className="run-tag run-tag-a">A</span>
            <select value={idA} onChange={(e) => update({ dsA: e.target.value, dsB: e.target.value === idB ? idA : idB, dsPc: null })} data-testid="datasets-run-a" aria-label="Reference run (A)">
              {runOptions}
            </select>
          </label>
          <button type="button" className="btn btn-icon" title="Swap: make B the reference" aria-label="Swap the reference and the other run" onClick={() => update({ dsA: idB, dsB: idA, dsPc: null })}>
            ⇄
          </button>
          <label className="field" title="The other data set, read on A's components">
            <span className="run-tag run-tag-b">B</span>
            <select value={idB} onChange={(e) => update({ dsA: e.target.value === idA ? idB : idA, dsB: e.target.value, dsPc: null })} data-testid="datasets-run-b" aria-label="Other run (B)">
              {runOptions}
            </select>
          </label>
          <label className="field">
            <span>Layer</span>
            <select value={layer ?? ''} onChange={(e) => update({ dsLayer: e.target.value, dsPc: null })} data-testid="datasets-layer" aria-label="Layer" disabled={!layers.length}>
              {layers.map((l) => (
                <option key={l} value={l} disabled={differs(l) && l !== layer} title={differs(l) ? 'This layer differs between the two runs (module, reduction or width)' : undefined}>
                  {differs(l) ? `${l} (differs)` : l}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
      {layer === null ? (
        <EmptyState title="These runs share no layer">
          “{runA.name}” and “{runB.name}” have no layer of the same name. Pick two runs of the same model.
        </EmptyState>
      ) : (
        <ShiftBody runA={runA} runB={runB} layer={layer} onLayers={(ls) => setComparable((c) => (c && c.pair === pairKey && c.layers.join('\u0000') === ls.join('\u0000') ? c : { pair: pairKey, layers: ls }))} />
      )}
    </div>
  );
}

/** A refusal (4xx: e.g. runs of two models) will not change on retry; a lost connection might. */
function refused(error: Error): boolean {
  return error instanceof ApiError && error.status >= 400 && error.status < 500;
}

function DatasetsTitle() {
  return (
    <div className="toolbar-title">
      <h2>Compare two data sets</h2>
      <span className="muted">One model over two data sets, on A's components: which moved, and what sits at their ends.</span>
    </div>
  );
}

function ShiftBody({ runA, runB, layer, onLayers }: { runA: RunInfo; runB: RunInfo; layer: string; onLayers: (layers: string[]) => void }) {
  const { state, update } = useApp();
  const shift = useDatasetShift(runA.id, runB.id, layer);
  const comparedLayers = shift.data?.layers;
  useEffect(() => {
    if (comparedLayers) onLayers(comparedLayers);
  }, [comparedLayers, onLayers]);
  if (shift.error) {
    return (
      <section className="card datasets-card">
        <ErrorState error={shift.error} title={`Could not compare “${runA.name}” with “${runB.name}”`} onRetry={refused(shift.error) ? undefined : shift.retry} />
      </section>
    );
  }
  if (!shift.data) {
    return (
      <section className="card datasets-card datasets-loading" aria-busy="true" data-testid="datasets-loading">
        <Spinner label="Comparing" />
        <span className="muted">
          Projecting {formatCount(runB.n_samples)} samples of B on A's components of <span className="mono">{layer}</span>…
        </span>
      </section>
    );
  }
  const rows = sortShiftRows(shift.data.components, state.dsSort);
  const picked = rows.find((r) => r.index === state.dsPc) ?? rows[0] ?? null;
  return (
    <div className="datasets-grid">
      <RankedCard
        data={shift.data}
        rows={rows}
        sort={state.dsSort}
        onSort={(by) => update({ dsSort: by }, { replace: true })}
        picked={picked?.index ?? null}
        onPick={(pc) => update({ dsPc: pc }, { replace: true })}
        runA={runA}
        runB={runB}
      />
      {picked && (
        <div className="datasets-right">
          <HistogramCard runA={runA} runB={runB} layer={layer} row={picked} />
          <EndsCard runA={runA} runB={runB} layer={layer} row={picked} />
        </div>
      )}
    </div>
  );
}

/** The rank measures: header text, what the active header says, and its tooltip. */
const SORTS: Record<ShiftSort, { label: string; ranked: string; title: string }> = {
  smd: {
    label: 'SMD',
    ranked: 'largest |SMD| first',
    title: "standardised mean difference (B − A) / pooled SD: how far B's mean moved, in SDs of the component (small-variance components move far by it)",
  },
  ks: {
    label: 'KS',
    ranked: 'largest KS first',
    title: 'two-sample Kolmogorov–Smirnov statistic: the largest gap between the two cumulative distributions (any change of shape)',
  },
  w1: {
    label: 'W₁',
    ranked: 'largest W₁ first',
    title: "Wasserstein (earth mover's) distance, in score units: how far B's scores moved, weighted by the component's scale",
  },
};

function SortHeader({ by, sort, onSort }: { by: ShiftSort; sort: ShiftSort; onSort: (by: ShiftSort) => void }) {
  const on = by === sort;
  return (
    <th className="num sortable" aria-sort={on ? 'descending' : 'none'} title={SORTS[by].title}>
      <button type="button" className={`sort-button${on ? ' on' : ''}`} onClick={() => onSort(by)} data-testid={`shift-sort-${by}`} aria-pressed={on}>
        {SORTS[by].label}
        <span className="sort-indicator" aria-hidden="true">
          {on ? '▼' : '↕'}
        </span>
      </button>
    </th>
  );
}

function RankedCard({
  data,
  rows,
  sort,
  onSort,
  picked,
  onPick,
  runA,
  runB,
}: {
  data: DatasetShift;
  rows: ShiftRow[];
  sort: ShiftSort;
  onSort: (by: ShiftSort) => void;
  picked: number | null;
  onPick: (pc: number) => void;
  runA: RunInfo;
  runB: RunInfo;
}) {
  const ref = useRef<HTMLElement>(null);
  const maxSmd = Math.max(1e-9, ...data.components.map((r) => Math.abs(r.smd ?? 0)));
  return (
    <section className="card datasets-card ranked-card" ref={ref}>
      <div className="card-head">
        <h3>Components ranked by shift</h3>
        <span className="muted small" title={SORTS[sort].title} data-testid="shift-ranked-by">
          {SORTS[sort].ranked}
        </span>
        <div className="toolbar-spacer" />
        <PngButton target={ref} name={`${runA.id}-vs-${runB.id}-${data.layer}-shift`} title="Download the ranking as PNG" />
      </div>
      <table className="shift-table" data-testid="shift-table">
        <thead>
          <tr>
            <th>#</th>
            <th>component</th>
            <th className="num" title="the component's share of A's variance: |SMD| can rank a component with little variance first">
              var.
            </th>
            <SortHeader by="smd" sort={sort} onSort={onSort} />
            <SortHeader by="ks" sort={sort} onSort={onSort} />
            <SortHeader by="w1" sort={sort} onSort={onSort} />
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={r.index} className={r.index === picked ? 'on' : ''} onClick={() => onPick(r.index)} data-testid="shift-row" data-component={r.index} aria-selected={r.index === picked}>
              <td className="muted">{i + 1}</td>
              <td>
                <button type="button" className="link-button" onClick={() => onPick(r.index)} title={`Show ${r.name}: ${describeShift(r.smd, r.ks)}`}>
                  <strong>{r.name}</strong>
                </button>
              </td>
              <td className="num muted" data-testid="shift-variance">
                {formatPercent(r.explained_variance_ratio)}
              </td>
              <td className="smd-cell">
                <span className="smd-track" aria-hidden="true">
                  <span className={`smd-fill ${(r.smd ?? 0) < 0 ? 'neg' : 'pos'}`} style={{ width: `${(Math.abs(r.smd ?? 0) / maxSmd) * 50}%` }} />
                </span>
                <span className="num">{r.smd === null ? '–' : `${r.smd >= 0 ? '+' : '−'}${Math.abs(r.smd).toFixed(2)}`}</span>
              </td>
              <td className="num" title={r.ks_pvalue === null ? undefined : `p = ${r.ks_pvalue.toPrecision(2)}`}>
                {r.ks === null ? '–' : r.ks.toFixed(2)}
              </td>
              <td className="num">{r.wasserstein === null ? '–' : formatScore(r.wasserstein)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <CapturedChart data={data} />
    </section>
  );
}

/** Cumulative share of B's variance captured by A's top-k components, against B's own top-k. */
function CapturedChart({ data }: { data: DatasetShift }) {
  const [box, size] = useSize<HTMLDivElement>();
  const { k, reference_components: ref, own_components: own } = data.captured;
  const last = ref.length ? ref[ref.length - 1] : null;
  const lastOwn = own.length ? own[own.length - 1] : null;
  const W = size.width;
  const H = 150;
  const m = { left: 38, right: 12, top: 12, bottom: 26 };
  const pw = Math.max(10, W - m.left - m.right);
  const ph = H - m.top - m.bottom;
  const x = (i: number) => m.left + (k.length > 1 ? (i / (k.length - 1)) * pw : pw / 2);
  const y = (v: number) => m.top + ph * (1 - Math.min(1, Math.max(0, v)));
  const path = (values: (number | null)[]) =>
    values
      .map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`))
      .filter(Boolean)
      .join(' ');
  return (
    <div className="captured" data-testid="captured-variance">
      <div className="captured-head">
        <strong>Variance of B captured</strong>
        <span className="muted small">
          A's top {k.length} components capture <strong data-testid="captured-share">{formatPercent(last ?? NaN)}</strong> of B's variance; B's own top{' '}
          {k.length}: {formatPercent(lastOwn ?? NaN)}
        </span>
      </div>
      <div ref={box} className="captured-plot">
        {W > 0 && (
          <svg width={W} height={H} className="line-chart" role="img" aria-label="Cumulative share of B's variance captured by A's components and by B's own">
            {[0, 0.25, 0.5, 0.75, 1].map((v) => (
              <g key={v} className="grid">
                <line x1={m.left} x2={m.left + pw} y1={y(v)} y2={y(v)} />
                <text x={m.left - 5} y={y(v)} dy="0.32em" textAnchor="end">
                  {Math.round(v * 100)}%
                </text>
              </g>
            ))}
            {k.map((kk, i) =>
              k.length <= 12 || i % Math.ceil(k.length / 10) === 0 ? (
                <text key={kk} className="tick-text" x={x(i)} y={H - 10} textAnchor="middle">
                  {kk}
                </text>
              ) : null,
            )}
            <text className="axis-title" x={m.left + pw} y={H - 1} textAnchor="end">
              top k components
            </text>
            <polyline points={path(own)} className="line-own" />
            <polyline points={path(ref)} className="line-ref" />
            {ref.map((v, i) => (v === null ? null : <circle key={i} cx={x(i)} cy={y(v)} r={2.5} className="dot-ref" />))}
          </svg>
        )}
      </div>
      <div className="captured-legend small">
        <span>
          <span className="legend-line ref" /> A's components
        </span>
        <span>
          <span className="legend-line own" /> B's own components
        </span>
      </div>
    </div>
  );
}

function HistogramCard({ runA, runB, layer, row }: { runA: RunInfo; runB: RunInfo; layer: string; row: ShiftRow }) {
  const ref = useRef<HTMLElement>(null);
  const hist = useDatasetHistogram(runA.id, runB.id, layer, row.index, BINS);
  const [box, size] = useSize<HTMLDivElement>();
  return (
    <section className="card datasets-card" ref={ref} data-testid="datasets-histogram-card">
      <div className="card-head">
        <h3>
          {row.name} of <span className="mono">{layer}</span>
        </h3>
        <span className="muted small" data-testid="datasets-shift-text">
          {describeShift(row.smd, row.ks)} · KS {row.ks === null ? '–' : row.ks.toFixed(2)}
          {row.ks_pvalue !== null ? ` (p ${row.ks_pvalue < 1e-4 ? '< 0.0001' : `= ${row.ks_pvalue.toPrecision(2)}`})` : ''}
        </span>
        <div className="toolbar-spacer" />
        <PngButton target={ref} name={`${runA.id}-vs-${runB.id}-${layer}-${row.name}-histogram`} title="Download the histogram as PNG" />
      </div>
      <div className="overlay-legend small">
        <span>
          <span className="swatch" style={{ background: 'var(--run-a)' }} /> A · {runA.name} (mean {formatMean(row.mean_reference, row.std_reference)}, SD {formatScore(row.std_reference ?? NaN)})
        </span>
        <span>
          <span className="swatch" style={{ background: 'var(--run-b)' }} /> B · {runB.name} (mean {formatMean(row.mean_other, row.std_reference)}, SD {formatScore(row.std_other ?? NaN)})
        </span>
      </div>
      <div ref={box} className="overlay-plot">
        {hist.error ? (
          <ErrorState error={hist.error} title="Could not load the histogram" onRetry={hist.retry} compact />
        ) : hist.data && size.width > 0 ? (
          <OverlayHistogram data={hist.data} width={size.width} />
        ) : (
          <Skeleton height={200} />
        )}
      </div>
    </section>
  );
}

/** Both data sets' scores in the same equal-width bins, as shares of each set (two colours). */
function OverlayHistogram({ data, width, height = 200 }: { data: DatasetHistogram; width: number; height?: number }) {
  const m = { left: 44, right: 12, top: 10, bottom: 28 };
  const pw = Math.max(10, width - m.left - m.right);
  const ph = height - m.top - m.bottom;
  const a = shares(data.reference);
  const b = shares(data.other);
  const maxH = Math.max(1e-9, ...a, ...b);
  const lo = data.edges[0];
  const hi = data.edges[data.edges.length - 1];
  const xs = (v: number) => m.left + ((v - lo) / (hi - lo || 1)) * pw;
  const ys = (v: number) => m.top + ph * (1 - v / maxH);
  const xTicks = niceTicks(lo, hi, Math.max(2, Math.floor(pw / 80)));
  const step = tickStep(xTicks);
  const yTicks = niceTicks(0, maxH, 3).filter((v) => v > 0);
  const stepPath = (values: number[]) => {
    let d = `M${xs(lo).toFixed(1)},${ys(0).toFixed(1)}`;
    values.forEach((v, i) => {
      d += ` L${xs(data.edges[i]).toFixed(1)},${ys(v).toFixed(1)} L${xs(data.edges[i + 1]).toFixed(1)},${ys(v).toFixed(1)}`;
    });
    return `${d} L${xs(hi).toFixed(1)},${ys(0).toFixed(1)}`;
  };
  return (
    <svg className="histogram overlay-histogram" width={width} height={height} data-testid="datasets-histogram" role="img" aria-label="Overlaid histograms of the two data sets">
      {yTicks.map((v) => (
        <g key={v} className="grid">
          <line x1={m.left} x2={m.left + pw} y1={ys(v)} y2={ys(v)} />
          <text x={m.left - 6} y={ys(v)} dy="0.32em" textAnchor="end">
            {formatPercent(v, v < 0.1 ? 1 : 0)}
          </text>
        </g>
      ))}
      {data.reference.map((_, i) => {
        const x0 = xs(data.edges[i]);
        const w = Math.max(0.5, xs(data.edges[i + 1]) - x0 - 0.5);
        return (
          <g key={i}>
            <rect x={x0} width={w} y={ys(a[i])} height={Math.max(0, ys(0) - ys(a[i]))} className="overlay-a" />
            <rect x={x0} width={w} y={ys(b[i])} height={Math.max(0, ys(0) - ys(b[i]))} className="overlay-b" />
            <rect x={x0} width={w} y={m.top} height={ph} className="hist-hit">
              <title>
                {`scores ${formatScore(data.edges[i])} … ${formatScore(data.edges[i + 1])}\nA: ${data.reference[i]} (${formatPercent(a[i])})\nB: ${data.other[i]} (${formatPercent(b[i])})`}
              </title>
            </rect>
          </g>
        );
      })}
      <path d={stepPath(a)} className="overlay-line-a" />
      <path d={stepPath(b)} className="overlay-line-b" />
      <line className="axis-line" x1={m.left} x2={m.left + pw} y1={ys(0)} y2={ys(0)} />
      {xTicks.map((v) => (
        <g key={v} className="tick">
          <line x1={xs(v)} x2={xs(v)} y1={ys(0)} y2={ys(0) + 4} />
          <text x={xs(v)} y={ys(0) + 16} textAnchor="middle">
            {formatTick(v, step)}
          </text>
        </g>
      ))}
      <text className="axis-title" x={10} y={m.top + ph / 2} transform={`rotate(-90 10 ${m.top + ph / 2})`} textAnchor="middle">
        share of set
      </text>
    </svg>
  );
}

function EndsCard({ runA, runB, layer, row }: { runA: RunInfo; runB: RunInfo; layer: string; row: ShiftRow }) {
  const ref = useRef<HTMLElement>(null);
  const ends = useDatasetExtremes(runA.id, runB.id, layer, row.index, N_PER_END);
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
