import type { ColumnInfo } from '../../api';
import { BasisBar } from '../../components/BasisBar';
import type { ResolvedBasis } from '../../hooks';
import { LABEL_COLUMN } from '../../lib/runInfo';
import type { ScatterState } from '../../lib/urlState';
import type { ScatterBasis } from '../../lib/scatterPoints';
import { axisText } from './axes';

export type MouseMode = 'panZoom' | 'lasso';

export interface ScatterControlsProps {
  basis: ScatterBasis;
  resolved: ResolvedBasis;
  /** Each component's share of variance: one axis option per component. */
  ratios: number[];
  x: number;
  y: number;
  columns: ColumnInfo[];
  /** The colour-by column shown; null: none. */
  column: ColumnInfo | null;
  mode: MouseMode;
  onChange: (patch: Partial<Pick<ScatterState, 'x' | 'y' | 'color'>>) => void;
  onMode: (mode: MouseMode) => void;
}

/** The scatter's toolbar: the two axes, the colour-by column, the basis and the mouse mode. */
export function ScatterControls({ basis, resolved, ratios, x, y, columns, column, mode, onChange, onMode }: ScatterControlsProps) {
  const axisOptions = ratios.map((_, i) => (
    <option key={i} value={i}>
      {axisText(basis, i, ratios)}
    </option>
  ));
  return (
    <div className="toolbar scatter-toolbar">
      <label className="field">
        <span>X</span>
        <select value={x} onChange={(e) => onChange({ x: Number(e.target.value) })} data-testid="x-axis-select" aria-label="X axis component">
          {axisOptions}
        </select>
      </label>
      <label className="field">
        <span>Y</span>
        <select value={y} onChange={(e) => onChange({ y: Number(e.target.value) })} data-testid="y-axis-select" aria-label="Y axis component">
          {axisOptions}
        </select>
      </label>
      <button
        type="button"
        className="btn btn-icon"
        title="Swap axes"
        aria-label="Swap axes"
        onClick={() => onChange({ x: y, y: x })}
      >
        ⇄
      </button>
      <label className="field">
        <span>Colour</span>
        <select
          value={column?.name ?? 'none'}
          onChange={(e) => onChange({ color: e.target.value === LABEL_COLUMN ? null : e.target.value })}
          data-testid="color-select"
          aria-label="Colour by"
        >
          {columns.map((c) => (
            <option key={c.name} value={c.name}>
              {c.name} ({c.kind})
            </option>
          ))}
          <option value="none">none</option>
        </select>
      </label>
      <div className="toolbar-spacer" />
      <BasisBar basis={resolved} allowDirection={false} />
      <div className="segmented" role="radiogroup" aria-label="Mouse mode">
        <button type="button" role="radio" aria-checked={mode === 'panZoom'} className={mode === 'panZoom' ? 'on' : ''} onClick={() => onMode('panZoom')} data-testid="mode-pan">
          Pan &amp; zoom
        </button>
        <button type="button" role="radio" aria-checked={mode === 'lasso'} className={mode === 'lasso' ? 'on' : ''} onClick={() => onMode('lasso')} data-testid="mode-lasso">
          Lasso
        </button>
      </div>
    </div>
  );
}
