import { useRef } from 'react';
import type { DatasetShift, RunInfo, ShiftRow } from '../../api';
import { PngButton } from '../../components/PngButton';
import { describeShift } from '../../lib/datasets';
import { formatPercent, formatScore } from '../../lib/format';
import type { ShiftSort } from '../../lib/urlState';
import { CapturedChart } from './CapturedChart';

/** The rank measures: header text, what the active header says, and its tooltip. */
const SORTS: Record<ShiftSort, { label: string; ranked: string; title: string }> = {
  shift: {
    label: 'Shift',
    ranked: 'largest shift weighted by variance first',
    title: "W₁ over the layer's total SD: how far B's scores moved, in units of the whole layer's spread (a component with little variance cannot rank first)",
  },
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

/** The components ranked by how far B moved, with the variance of B that A captures. */
export function RankedCard({
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
            <SortHeader by="shift" sort={sort} onSort={onSort} />
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
              <td className="num" data-testid="shift-total">
                {r.w1_total_sd === null ? '–' : r.w1_total_sd.toFixed(2)}
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
