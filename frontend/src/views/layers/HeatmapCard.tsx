import { useRef, useState } from 'react';
import type { PCCorrelation } from '../../api';
import { EmptyState, ErrorState, Skeleton } from '../../components/common';
import { PngButton } from '../../components/PngButton';
import { useAppSlices } from '../../context';
import { useCssVar, usePcCorrelation } from '../../hooks';
import { divergingColor } from '../../lib/analysis';
import { formatPercent, pcName } from '../../lib/format';

/** Any two layers: components of A (rows) x components of B (columns), coloured by r. */
export function HeatmapCard({ chosen }: { chosen: string[] }) {
  const { run, state, update, theme } = useAppSlices('layers');
  const names = run.layers.map((l) => l.name);
  const a = state.heatA && names.includes(state.heatA) ? state.heatA : chosen[0];
  const b = state.heatB && names.includes(state.heatB) ? state.heatB : (chosen[1] ?? chosen[0]);
  const corr = usePcCorrelation(run.id, a, b);
  const panel = useCssVar('--bg-panel', theme);
  const mid = /^#[0-9a-f]{6}$/i.test(panel) ? panel : '#ffffff';
  const select = (which: 'heatA' | 'heatB', value: string) => update({ [which]: value });
  const cardRef = useRef<HTMLElement>(null);
  return (
    <section className="card heatmap-card" data-testid="heatmap-card" ref={cardRef}>
      <div className="card-head">
        <h3>Correlation of two layers' components</h3>
        <div className="toolbar-spacer" />
        <LayerPicker label="Layer A (rows)" value={a} names={names} onChange={(v) => select('heatA', v)} testId="heat-a-select" />
        <LayerPicker label="Layer B (columns)" value={b} names={names} onChange={(v) => select('heatB', v)} testId="heat-b-select" />
        <PngButton target={cardRef} name={`${run.id}-${a}-vs-${b}-correlation`} title="Download the heatmap as PNG" />
      </div>
      {corr.error ? (
        <ErrorState error={corr.error} title={`Could not correlate ${a} with ${b}`} onRetry={corr.retry} compact />
      ) : corr.data ? (
        <RHeatmap data={corr.data} mid={mid} />
      ) : (
        <Skeleton height={300} width={420} />
      )}
    </section>
  );
}

function RHeatmap({ data, mid }: { data: PCCorrelation; mid: string }) {
  const [hover, setHover] = useState<[number, number] | null>(null);
  const ka = data.r.length;
  const kb = data.r[0]?.length ?? 0;
  const cell = 34;
  const left = 92;
  const top = 28;
  const width = left + kb * cell + 2;
  const height = top + ka * cell + 2;
  const hv = hover ? data.r[hover[0]]?.[hover[1]] ?? null : null;
  const stops = Array.from({ length: 11 }, (_, i) => `${divergingColor(-1 + i / 5, mid)} ${i * 10}%`).join(', ');
  if (!ka || !kb) return <EmptyState title="No components to correlate" />;
  return (
    <div className="heatmap-body">
      <svg width={width} height={height} className="heatmap" data-testid="corr-heatmap" onMouseLeave={() => setHover(null)} role="img" aria-label={`r between ${data.layer_a} and ${data.layer_b}`}>
        {data.ratio_b.slice(0, kb).map((_, j) => (
          <text key={j} x={left + j * cell + cell / 2} y={top - 9} textAnchor="middle" className={`heat-label${hover?.[1] === j ? ' on' : ''}`}>
            {j + 1}
          </text>
        ))}
        {data.r.map((row, i) => (
          <g key={i}>
            <text x={left - 8} y={top + i * cell + cell / 2} textAnchor="end" dominantBaseline="middle" className={`heat-label${hover?.[0] === i ? ' on' : ''}`}>
              {pcName(i)} <tspan className="heat-label-var">{formatPercent(data.ratio_a[i] ?? NaN, 0)}</tspan>
            </text>
            {row.map((v, j) => (
              <rect
                key={j}
                x={left + j * cell + 1}
                y={top + i * cell + 1}
                width={cell - 2}
                height={cell - 2}
                rx={3}
                fill={divergingColor(v, mid)}
                className={`heat-cell${hover && hover[0] === i && hover[1] === j ? ' on' : ''}`}
                onMouseEnter={() => setHover([i, j])}
                data-testid="heatmap-cell"
                data-r={v === null ? '' : v.toFixed(3)}
              >
                <title>{`${data.layer_a} ${pcName(i)} × ${data.layer_b} ${pcName(j)}: r = ${v === null ? '–' : v.toFixed(3)}`}</title>
              </rect>
            ))}
          </g>
        ))}
      </svg>
      <div className="heatmap-side">
        <div className="heat-readout" data-testid="heatmap-readout" aria-live="polite">
          {hover ? (
            <>
              <span>
                <span className="mono">{data.layer_a}</span> {pcName(hover[0])} × <span className="mono">{data.layer_b}</span> {pcName(hover[1])}
              </span>
              <strong className={hv !== null && hv < 0 ? 'sign-neg' : 'sign-pos'}>r = {hv === null ? '–' : `${hv >= 0 ? '+' : '−'}${Math.abs(hv).toFixed(2)}`}</strong>
            </>
          ) : (
            <span className="muted">Hover a cell to read r. Rows: {data.layer_a}; columns: {data.layer_b} (PC numbers).</span>
          )}
        </div>
        <div className="legend legend-numeric">
          <div className="legend-title">Pearson r</div>
          <div className="ramp" style={{ background: `linear-gradient(to right, ${stops})` }} aria-hidden="true" />
          <div className="ramp-labels">
            <span>−1</span>
            <span>0</span>
            <span>+1</span>
          </div>
        </div>
      </div>
    </div>
  );
}

interface LayerPickerProps {
  label: string;
  value: string;
  names: string[];
  onChange: (name: string) => void;
  testId: string;
}

/** A labelled select of layer names. */
function LayerPicker({ label, value, names, onChange, testId }: LayerPickerProps) {
  return (
    <label className="field">
      <span>{label}</span>
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} aria-label={label}>
        {names.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
    </label>
  );
}
