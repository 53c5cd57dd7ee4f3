import type { Histogram as HistogramData } from '../api';
import { MISSING_COLOR, niceTicks } from '../lib/colors';
import { formatPercent, formatScore, formatTick, tickStep } from '../lib/format';
import { binLayout, binTotals, type HistogramAxis } from '../lib/quantile';
import { labelColor } from '../lib/runInfo';

export const HIST_MARGIN = { left: 44, right: 16, top: 24, bottom: 30 };

interface Props {
  data: HistogramData;
  labels: string[];
  axis: HistogramAxis;
  width: number;
  height?: number;
  /** Slider position: its quantile and its score. */
  markerQ: number;
  markerScore: number;
}

/** Stacked histogram of one component's scores in quantile-based bins, with the slider's marker. */
export function Histogram({ data, labels, axis, width, height = 190, markerQ, markerScore }: Props) {
  const { edges, counts, by_label } = data;
  const m = HIST_MARGIN;
  const plotW = Math.max(10, width - m.left - m.right);
  const plotH = height - m.top - m.bottom;
  const totals = binTotals(counts, by_label);
  const boxes = binLayout(edges, totals, axis);
  const maxH = Math.max(...boxes.map((b) => b.height), 1e-12);
  const lo = edges[0];
  const hi = edges[edges.length - 1];
  const xOfScore = (s: number) => m.left + (hi > lo ? ((s - lo) / (hi - lo)) * plotW : plotW / 2);
  const xOfUnit = (u: number) => m.left + u * plotW;
  const yOf = (h: number) => m.top + plotH * (1 - h / maxH);

  // series in label order; labels the run does not list go last
  const series: { label: string; values: number[] }[] = by_label
    ? [
        ...labels.filter((l) => l in by_label).map((l) => ({ label: l, values: by_label[l] })),
        ...Object.keys(by_label)
          .filter((l) => !labels.includes(l))
          .map((l) => ({ label: l, values: by_label[l] })),
      ]
    : [{ label: '', values: counts }];

  const xTicks =
    axis === 'score'
      ? (() => {
          const values = niceTicks(lo, hi, Math.max(2, Math.floor(plotW / 80)));
          const step = tickStep(values);
          return values.map((v) => ({ x: xOfScore(v), text: formatTick(v, step) }));
        })()
      : [0, 0.25, 0.5, 0.75, 1].map((u) => ({ x: xOfUnit(u), text: formatPercent(u, 0) }));
  const yTicks = niceTicks(0, maxH, 3).filter((v) => v > 0);
  const markerX = axis === 'score' ? xOfScore(Math.min(hi, Math.max(lo, markerScore))) : xOfUnit(markerQ);
  const badge = `${formatPercent(markerQ, 0)} · ${formatScore(markerScore)}`;
  const badgeW = badge.length * 6.6 + 12;
  const badgeX = Math.min(width - m.right - badgeW, Math.max(m.left, markerX - badgeW / 2));

  return (
    <svg className="histogram" width={width} height={height} viewBox={`0 0 ${width} ${height}`} data-testid="histogram" role="img" aria-label={`Histogram of scores in ${counts.length} quantile bins`}>
      {yTicks.map((v) => (
        <g key={v} className="grid">
          <line x1={m.left} x2={m.left + plotW} y1={yOf(v)} y2={yOf(v)} />
          {axis === 'quantile' && (
            <text x={m.left - 6} y={yOf(v)} dy="0.32em" textAnchor="end">
              {Math.round(v)}
            </text>
          )}
        </g>
      ))}
      <text className="axis-title" x={10} y={m.top + plotH / 2} transform={`rotate(-90 10 ${m.top + plotH / 2})`} textAnchor="middle">
        {axis === 'score' ? 'density' : 'count'}
      </text>
      {boxes.map((b, i) => {
        const x0 = xOfUnit(b.x0);
        const x1 = xOfUnit(b.x1);
        const w = Math.max(0.5, x1 - x0 - (x1 - x0 > 3 ? 1 : 0));
        const total = totals[i] || 1;
        let acc = 0;
        const tip = [
          `scores ${formatScore(edges[i])} … ${formatScore(edges[i + 1])}: ${totals[i]} samples`,
          ...series
            .filter((s) => s.values[i] > 0)
            .sort((a, b) => b.values[i] - a.values[i])
            .slice(0, 5)
            .map((s) => `${s.label || 'all'}: ${s.values[i]}`),
        ].join('\n');
        return (
          <g key={i}>
            {series.map((s) => {
              const c = s.values[i] ?? 0;
              if (c <= 0) return null;
              const h0 = (acc / total) * b.height;
              acc += c;
              const h1 = (acc / total) * b.height;
              return (
                <rect
                  key={s.label}
                  x={x0}
                  width={w}
                  y={yOf(h1)}
                  height={Math.max(0, yOf(h0) - yOf(h1))}
                  fill={s.label ? labelColor(labels, s.label) : 'var(--accent)'}
                  stroke={s.label && labelColor(labels, s.label) === MISSING_COLOR ? 'none' : undefined}
                  className="hist-seg"
                />
              );
            })}
            <rect x={x0} width={Math.max(1, x1 - x0)} y={m.top} height={plotH} className="hist-hit">
              <title>{tip}</title>
            </rect>
          </g>
        );
      })}
      <line className="axis-line" x1={m.left} x2={m.left + plotW} y1={m.top + plotH} y2={m.top + plotH} />
      {xTicks.map((t, i) => (
        <g key={i} className="tick">
          <line x1={t.x} x2={t.x} y1={m.top + plotH} y2={m.top + plotH + 4} />
          <text x={t.x} y={m.top + plotH + 16} textAnchor="middle">
            {t.text}
          </text>
        </g>
      ))}
      <g className="hist-marker" data-testid="histogram-marker">
        <line x1={markerX} x2={markerX} y1={m.top - 2} y2={m.top + plotH} />
        <rect x={badgeX} y={2} width={badgeW} height={16} rx={3} />
        <text x={badgeX + badgeW / 2} y={13.5} textAnchor="middle">
          {badge}
        </text>
      </g>
    </svg>
  );
}
