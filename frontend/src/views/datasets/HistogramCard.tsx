import { useRef } from 'react';
import type { DatasetHistogram, RunInfo, ShiftRow } from '../../api';
import { ErrorState, Skeleton } from '../../components/common';
import { PngButton } from '../../components/PngButton';
import { useSize } from '../../components/useSize';
import { useDatasetHistogram, useFilterParam } from '../../hooks';
import { niceTicks } from '../../lib/colors';
import { describeShift, formatMean, shares } from '../../lib/datasets';
import { formatPercent, formatScore, formatTick, tickStep } from '../../lib/format';

const BINS = 40;

/** The picked component: both data sets' scores overlaid, with the shift in words. */
export function HistogramCard({ runA, runB, layer, row }: { runA: RunInfo; runB: RunInfo; layer: string; row: ShiftRow }) {
  const ref = useRef<HTMLElement>(null);
  const hist = useDatasetHistogram(runA.id, runB.id, layer, row.index, BINS, useFilterParam());
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
