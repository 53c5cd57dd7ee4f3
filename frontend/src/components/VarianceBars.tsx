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

/** Explained variance per component (bars) and the cumulative share (line, right axis 0..100 %). */
export function VarianceBars({ ratios, width = 216, height = 46, active = null, onPick }: Props) {
  const k = ratios.length;
  if (!k) return null;
  const cum = cumulative(ratios);
  const max = Math.max(...ratios, 1e-12);
  const pad = 2;
  const plotH = height - pad * 2;
  const step = (width - pad * 2) / k;
  const barW = Math.max(1, step * 0.72);
  const y = (v: number) => pad + plotH * (1 - v);
  const line = cum.map((c, i) => `${i ? 'L' : 'M'}${(pad + step * (i + 0.5)).toFixed(1)},${y(c).toFixed(1)}`).join('');
  return (
    <svg className="variance-bars" width={width} height={height} viewBox={`0 0 ${width} ${height}`} data-testid="variance-bars" role="img" aria-label={`Explained variance of ${k} components; together ${formatPercent(cum[k - 1])}`}>
      <line x1={pad} x2={width - pad} y1={y(0)} y2={y(0)} className="vb-axis" />
      {ratios.map((r, i) => {
        const h = (r / max) * plotH;
        return (
          <rect
            key={i}
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
