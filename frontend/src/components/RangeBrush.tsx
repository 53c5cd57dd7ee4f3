import { useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import { useColumnValues } from '../hooks';
import { binValues, valueAt } from '../lib/bins';
import { formatScore } from '../lib/format';

const W = 220;
const H = 34;
const BINS = 40;

/**
 * A numeric column's histogram with a brush: drag across it to keep that range of the column
 * (the shared filter's `ranges`); the kept part is drawn in the accent colour.
 */
export function RangeBrush({ run, column, range, onChange, onRemove }: {
  run: string;
  column: string;
  range: [number | null, number | null] | null;
  onChange: (range: [number, number]) => void;
  onRemove: () => void;
}) {
  const values = useColumnValues(run, column);
  const bins = useMemo(() => (values.data ? binValues(values.data, BINS) : null), [values.data]);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const peak = bins ? Math.max(1, ...bins.counts) : 1;
  const span = bins ? bins.hi - bins.lo || 1 : 1;
  const toX = (v: number) => (bins ? ((v - bins.lo) / span) * W : 0);
  const lo = drag ? Math.min(...drag) : range?.[0] !== null && range ? toX(range[0] as number) : range ? 0 : null;
  const hi = drag ? Math.max(...drag) : range?.[1] !== null && range ? toX(range[1] as number) : range ? W : null;

  const xOf = (e: PointerEvent) => {
    const box = svgRef.current!.getBoundingClientRect();
    return Math.min(W, Math.max(0, ((e.clientX - box.left) / box.width) * W));
  };
  const finish = () => {
    if (!drag || !bins) return;
    const [a, b] = [Math.min(...drag), Math.max(...drag)];
    setDrag(null);
    if (b - a < 2) return; // a click, not a drag
    onChange([valueAt(bins, a / W), valueAt(bins, b / W)]);
  };
  // keys: the arrows move the whole range by a bin's width
  const onKey = (e: KeyboardEvent) => {
    if (!bins || !range || (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight')) return;
    e.preventDefault();
    const step = (e.key === 'ArrowLeft' ? -1 : 1) * (span / BINS);
    const a = range[0] ?? bins.lo;
    const b = range[1] ?? bins.hi;
    onChange([valueAt(bins, (a + step - bins.lo) / span), valueAt(bins, (b + step - bins.lo) / span)]);
  };
  const label = range ? `${range[0] === null ? 'lowest' : formatScore(range[0])} – ${range[1] === null ? 'highest' : formatScore(range[1])}` : 'drag to keep a range';

  return (
    <div className="range-brush" data-testid="range-brush" data-column={column}>
      <div className="range-brush-head">
        <span className="range-brush-name">{column}</span>
        <span className="muted small" data-testid="range-brush-value">{label}</span>
        <button type="button" className="btn btn-icon btn-tiny" onClick={onRemove} aria-label={`Remove the ${column} range`} title="Remove this range">
          ✕
        </button>
      </div>
      {bins ? (
        <svg
          ref={svgRef}
          className="range-brush-plot"
          viewBox={`0 0 ${W} ${H}`}
          width={W}
          height={H}
          role="slider"
          tabIndex={0}
          aria-label={`Range of ${column}: drag across the histogram`}
          aria-valuetext={label}
          aria-valuemin={bins.lo}
          aria-valuemax={bins.hi}
          onKeyDown={onKey}
          onPointerDown={(e) => {
            (e.target as Element).setPointerCapture?.(e.pointerId);
            const x = xOf(e);
            setDrag([x, x]);
          }}
          onPointerMove={(e) => drag && setDrag([drag[0], xOf(e)])}
          onPointerUp={finish}
          onPointerCancel={() => setDrag(null)}
        >
          {bins.counts.map((c, i) => {
            const x0 = (i / BINS) * W;
            const x1 = ((i + 1) / BINS) * W;
            const inside = lo !== null && hi !== null && x1 > lo && x0 < hi;
            const h = (c / peak) * (H - 4);
            return <rect key={i} x={x0 + 0.5} width={Math.max(0.5, x1 - x0 - 1)} y={H - h} height={h} className={inside || lo === null ? 'bar on' : 'bar'} />;
          })}
          {lo !== null && hi !== null && <rect className="brush" x={lo} width={Math.max(1, hi - lo)} y={0} height={H} />}
        </svg>
      ) : (
        <span className="skeleton" style={{ width: W, height: H }} aria-hidden="true" />
      )}
      {bins && (
        <div className="range-brush-scale muted" aria-hidden="true">
          <span>{formatScore(bins.lo)}</span>
          <span>{formatScore(bins.hi)}</span>
        </div>
      )}
    </div>
  );
}
