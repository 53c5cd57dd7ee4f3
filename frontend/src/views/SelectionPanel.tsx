import { useMemo, useState } from 'react';
import { SampleThumb } from '../components/SampleThumb';
import { useAppSlices } from '../context';
import { useColumnValues } from '../hooks';
import { formatCount } from '../lib/format';
import { labelCounts } from '../lib/labels';
import { decodeGroup, encodeGroup, groupTitle } from '../lib/direction';
import { LABEL_COLUMN, labelColor } from '../lib/runInfo';

const PAGE = 120;

/** The lasso selection as a gallery, with its label counts. */
export function SelectionPanel({ ids }: { ids: number[] }) {
  const { run, labels, update, state } = useAppSlices('basis');
  const groupA = decodeGroup(state.dirA);
  const groupB = decodeGroup(state.dirB);
  const mine = encodeGroup({ kind: 'ids', ids });
  const useAs = (which: 'A' | 'B') => update(which === 'A' ? { dirA: mine } : { dirB: mine }, { replace: true });
  const [shown, setShown] = useState(PAGE);
  const hasLabels = run.columns.some((c) => c.name === LABEL_COLUMN);
  const codes = useColumnValues(run.id, hasLabels ? LABEL_COLUMN : null);
  const labelOf = (id: number): string | null => {
    const c = codes.data?.[id];
    return c !== undefined && c >= 0 && c < labels.length ? labels[c] : null;
  };
  const counts = useMemo(
    () => (codes.data ? labelCounts(ids.map((id) => labelOf(id))) : []),
    [ids, codes.data, labels],
  );
  const max = counts[0]?.count ?? 1;
  const download = () => {
    const blob = new Blob([JSON.stringify({ run: run.id, ids }, null, 0)], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${run.id}-selection-${ids.length}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
  return (
    <section className="card selection-panel" data-testid="selection-gallery" aria-label="Selected samples">
      <div className="card-head">
        <div className="selection-title">
          <h3>
            <span data-testid="selection-count">{formatCount(ids.length)}</span> selected
          </h3>
          <span className="muted small">{((ids.length / run.n_samples) * 100).toFixed(1)}% of {formatCount(run.n_samples)} samples</span>
        </div>
        <div className="toolbar-spacer" />
        <button type="button" className="btn btn-small" onClick={download} title="Download the selected sample ids as JSON">
          Export ids
        </button>
        <button type="button" className="btn btn-small" onClick={() => update({ selection: [] })} data-testid="clear-selection">
          Clear
        </button>
      </div>
      <div className="direction-groups" data-testid="direction-groups">
        <span className="muted small">Direction:</span>
        <button type="button" className={`btn btn-small${state.dirA === mine ? ' on' : ''}`} onClick={() => useAs('A')} data-testid="use-as-a" title="Use this selection as group A (the start of a direction)">
          <span className="run-tag run-tag-a">A</span> {state.dirA === mine ? 'is group A' : 'Use as group A'}
        </button>
        <button type="button" className={`btn btn-small${state.dirB === mine ? ' on' : ''}`} onClick={() => useAs('B')} data-testid="use-as-b" title="Use this selection as group B (the end of a direction)">
          <span className="run-tag run-tag-b">B</span> {state.dirB === mine ? 'is group B' : 'Use as group B'}
        </button>
        <button
          type="button"
          className="btn btn-small btn-primary"
          disabled={!groupA || !groupB || state.dirA === state.dirB}
          onClick={() => update({ basis: 'dir', tab: 'probe', pc: 0, q: 0.5 })}
          title={groupA && groupB ? `Probe the direction from ${groupTitle(groupA)} to ${groupTitle(groupB)}` : 'Pick group A and group B first (a selection or, in the Gallery, a label)'}
          data-testid="make-direction"
        >
          Make direction →
        </button>
        <span className="muted small direction-groups-state">
          A: {groupTitle(groupA)} · B: {groupTitle(groupB)}
        </span>
      </div>
      {counts.length > 0 && (
        <ul className="count-bars" data-testid="selection-label-counts">
          {counts.slice(0, 10).map((c) => (
            <li key={c.label}>
              <span className="count-label" title={c.label}>
                <span className="swatch" style={{ background: labelColor(labels, c.label === '—' ? null : c.label) }} aria-hidden="true" />
                {c.label}
              </span>
              <span className="count-track">
                <span className="count-fill" style={{ width: `${(c.count / max) * 100}%`, background: labelColor(labels, c.label === '—' ? null : c.label) }} />
              </span>
              <span className="count-num">{formatCount(c.count)}</span>
            </li>
          ))}
          {counts.length > 10 && <li className="muted small">+ {counts.length - 10} more labels</li>}
        </ul>
      )}
      <div className={`thumb-grid ${run.rendering_kind === 'text/plain' ? 'is-text' : 'is-image size-sm'} selection-thumbs`}>
        {ids.slice(0, shown).map((id) => (
          <SampleThumb key={id} id={id} label={labelOf(id)} size="sm" list={ids} />
        ))}
      </div>
      {ids.length > shown && (
        <button type="button" className="btn btn-small more" onClick={() => setShown((s) => s + PAGE)}>
          Show {Math.min(PAGE, ids.length - shown)} more of {formatCount(ids.length - shown)}
        </button>
      )}
    </section>
  );
}
