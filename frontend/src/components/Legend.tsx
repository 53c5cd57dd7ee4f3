import { useState } from 'react';
import { rampColor } from '../lib/colors';
import { formatCount, formatScore } from '../lib/format';

export interface LegendItem {
  label: string;
  color: string;
  count?: number;
}

/**
 * A categorical legend; long ones collapse to the first `limit` entries. With `onPick`, each
 * entry is a button (the label legends: a click isolates that label in the shared filter) and
 * `isOff` entries are drawn faded.
 */
export function CategoricalLegend({ items, title, limit = 12, testId = 'legend', onPick, isOff }: { items: LegendItem[]; title?: string; limit?: number; testId?: string; onPick?: (label: string) => void; isOff?: (label: string) => boolean }) {
  const [open, setOpen] = useState(false);
  const shown = open ? items : items.slice(0, limit);
  const colours = new Set(items.map((it) => it.color)).size;
  return (
    <div className="legend" data-testid={testId}>
      {title && <div className="legend-title">{title}</div>}
      {colours < items.length && (
        <p className="legend-note" data-testid="legend-shared-colours">
          {items.length} categories share {colours} colours: one colour stands for several of them; hover a sample for its name.
        </p>
      )}
      <ul>
        {shown.map((it) => (
          <li key={it.label} className={isOff?.(it.label) ? 'is-off' : undefined}>
            {onPick ? (
              <button type="button" className="legend-pick" onClick={() => onPick(it.label)} title={`Show only ${it.label} (click again: all)`} data-testid="legend-entry" data-label={it.label}>
                <span className="swatch" style={{ background: it.color }} aria-hidden="true" />
                <span className="legend-label">{it.label}</span>
              </button>
            ) : (
              <>
                <span className="swatch" style={{ background: it.color }} aria-hidden="true" />
                <span className="legend-label" title={it.label}>
                  {it.label}
                </span>
              </>
            )}
            {it.count !== undefined && <span className="legend-count">{formatCount(it.count)}</span>}
          </li>
        ))}
      </ul>
      {items.length > limit && (
        <button type="button" className="link-button" onClick={() => setOpen((o) => !o)}>
          {open ? 'show fewer' : `+ ${items.length - limit} more`}
        </button>
      )}
    </div>
  );
}

/** A continuous legend: the ramp with its min and max. */
export function NumericLegend({ title, min, max, missing = 0 }: { title: string; min: number; max: number; missing?: number }) {
  const stops = Array.from({ length: 11 }, (_, i) => `${rampColor(i / 10)} ${i * 10}%`).join(', ');
  return (
    <div className="legend legend-numeric" data-testid="legend">
      <div className="legend-title">{title}</div>
      <div className="ramp" style={{ background: `linear-gradient(to right, ${stops})` }} aria-hidden="true" />
      <div className="ramp-labels">
        <span>{formatScore(min)}</span>
        <span>{formatScore((min + max) / 2)}</span>
        <span>{formatScore(max)}</span>
      </div>
      {missing > 0 && <div className="muted small">{formatCount(missing)} missing (drawn at the low end)</div>}
    </div>
  );
}
