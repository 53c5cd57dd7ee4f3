import { useRef, useState, type KeyboardEvent } from 'react';
import { formatPercent, pcName } from '../lib/format';
import { cumulative } from '../lib/runInfo';

interface Props {
  ratios: number[];
  width?: number;
  height?: number;
  /** Highlighted component (the probed one). */
  active?: number | null;
  onPick?: (component: number) => void;
}

/**
 * Explained variance per component (bars) and the cumulative share (line, right axis 0..100 %).
 * With `onPick` the bars are buttons reachable by keyboard: Tab reaches one (the active one), the
 * arrow keys, Home and End move between them, Enter or Space picks.
 */
export function VarianceBars({ ratios, width = 216, height = 46, active = null, onPick }: Props) {
  const k = ratios.length;
  const [focus, setFocus] = useState<number | null>(null);
  const bars = useRef<(SVGRectElement | null)[]>([]);
  if (!k) return null;
  const current = Math.min(k - 1, focus ?? active ?? 0);
  const onKey = (e: KeyboardEvent, i: number) => {
    if (!onPick) return;
    const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: k - 1 }[e.key];
    if (to !== undefined) {
      e.preventDefault();
      const j = Math.max(0, Math.min(k - 1, to));
      setFocus(j);
      bars.current[j]?.focus();
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onPick(i);
    }
  };
  const cum = cumulative(ratios);
  const max = Math.max(...ratios, 1e-12);
  const pad = 2;
  const plotH = height - pad * 2;
  const step = (width - pad * 2) / k;
  const barW = Math.max(1, step * 0.72);
  const y = (v: number) => pad + plotH * (1 - v);
  const line = cum.map((c, i) => `${i ? 'L' : 'M'}${(pad + step * (i + 0.5)).toFixed(1)},${y(c).toFixed(1)}`).join('');
  return (
    <svg className="variance-bars" width={width} height={height} viewBox={`0 0 ${width} ${height}`} data-testid="variance-bars" role={onPick ? 'group' : 'img'} aria-label={`Explained variance of ${k} components; together ${formatPercent(cum[k - 1])}`}>
      <line x1={pad} x2={width - pad} y1={y(0)} y2={y(0)} className="vb-axis" />
      {ratios.map((r, i) => {
        const h = (r / max) * plotH;
        return (
          <rect
            key={i}
            ref={(el) => {
              bars.current[i] = el;
            }}
            role={onPick ? 'button' : undefined}
            tabIndex={onPick ? (i === current ? 0 : -1) : undefined}
            aria-label={onPick ? `Probe ${pcName(i)}: ${formatPercent(r)} of variance` : undefined}
            onKeyDown={onPick ? (e) => onKey(e, i) : undefined}
            onFocus={onPick ? () => setFocus(i) : undefined}
            x={pad + step * i + (step - barW) / 2}
            y={y(0) - h}
            width={barW}
            height={Math.max(h, 0.5)}
            rx={Math.min(1.5, barW / 3)}
            className={`vb-bar${active === i ? ' active' : ''}${onPick ? ' clickable' : ''}`}
            onClick={onPick ? () => onPick(i) : undefined}
          >
            <title>{`${pcName(i)}: ${formatPercent(r)} of variance (cumulative ${formatPercent(cum[i])})`}</title>
          </rect>
        );
      })}
      <path d={line} className="vb-cum" />
      {cum.map((c, i) => (
        <circle key={i} cx={pad + step * (i + 0.5)} cy={y(c)} r={k > 24 ? 0 : 1.6} className="vb-cum-dot" />
      ))}
    </svg>
  );
}
