import type { DatasetShift } from '../../api';
import { useSize } from '../../components/useSize';
import { formatPercent } from '../../lib/format';

/** Cumulative share of B's variance captured by A's top-k components, against B's own top-k. */
export function CapturedChart({ data }: { data: DatasetShift }) {
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
