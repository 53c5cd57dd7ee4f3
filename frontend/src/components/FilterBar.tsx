import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError } from '../api';
import { useAppSlices } from '../context';
import { useFilterParam, useSelection } from '../hooks';
import { filterChips, isBooleanColumn, isEmptyFilter, isolateLabel, labelShown, NO_FILTER, toggleHidden, withFlag, withRange, type SampleFilter } from '../lib/filter';
import { formatCount, formatScore } from '../lib/format';
import { labelColor } from '../lib/runInfo';
import { RangeBrush } from './RangeBrush';

const LABELS_SHOWN = 14;
const SEARCH_DELAY_MS = 300;

/**
 * The shared sample filter (URL `f`), over the gallery, probe, scatter and data-set views:
 * a search box, the labels (click to isolate, the eye to hide), "misclassified only" and other
 * boolean columns, and brushable histograms of numeric columns; how many samples pass.
 */
export function FilterBar() {
  const { run, labels, state, update } = useAppSlices('filter');
  const f = state.filter;
  const set = (next: SampleFilter) => update({ filter: next }, { replace: true });
  const param = useFilterParam();
  const kept = useSelection(run.id, param);

  const booleans = run.columns.filter((c) => c.kind === 'categorical' && c.name !== 'label' && isBooleanColumn(c.categories));
  const numeric = run.columns.filter((c) => c.kind === 'numeric');
  const hasCorrect = booleans.some((c) => c.name === 'correct');
  const otherFlags = booleans.filter((c) => c.name !== 'correct');

  // ranges being brushed: the URL's, and columns picked but not yet brushed
  const [picked, setPicked] = useState<string[]>([]);
  const brushes = useMemo(() => [...Object.keys(f.ranges), ...picked.filter((c) => !(c in f.ranges))], [f.ranges, picked]);

  const [showAll, setShowAll] = useState(false);
  const shownLabels = showAll ? labels : labels.slice(0, LABELS_SHOWN);
  const chips = filterChips(f, formatScore).filter((c) => !c.key.startsWith('range:') && c.key !== 'query');
  const active = !isEmptyFilter(f);

  return (
    <section className={`filter-bar${active ? ' is-active' : ''}`} aria-label="Filter samples" data-testid="filter-bar">
      <div className="filter-row">
        <SearchBox value={f.query} onChange={(query) => set({ ...f, query })} />
        {labels.length > 0 && (
          <ul className="filter-labels" aria-label="Labels: click to show only one, the eye to hide it">
            {shownLabels.map((label) => {
              const shown = labelShown(f, label);
              const only = f.labels !== null && f.labels.length === 1 && f.labels[0] === label;
              return (
                <li key={label} className={`filter-label${shown ? '' : ' is-off'}${only ? ' is-only' : ''}`}>
                  <button
                    type="button"
                    className="filter-label-main"
                    onClick={() => set(isolateLabel(f, label))}
                    aria-pressed={only}
                    title={only ? `Show every label again` : `Show only ${label}`}
                    data-testid="filter-label"
                    data-label={label}
                  >
                    <span className="swatch" style={{ background: labelColor(labels, label) }} aria-hidden="true" />
                    {label}
                  </button>
                  <button
                    type="button"
                    className="filter-label-eye"
                    onClick={() => set(toggleHidden(f, label))}
                    aria-label={f.hide.includes(label) ? `Show ${label}` : `Hide ${label}`}
                    title={f.hide.includes(label) ? `Show ${label} again` : `Hide ${label}`}
                    data-testid="filter-label-hide"
                  >
                    {f.hide.includes(label) ? '◌' : '◉'}
                  </button>
                </li>
              );
            })}
            {labels.length > LABELS_SHOWN && (
              <li>
                <button type="button" className="link-button" onClick={() => setShowAll((s) => !s)}>
                  {showAll ? 'fewer' : `+ ${labels.length - LABELS_SHOWN} more`}
                </button>
              </li>
            )}
          </ul>
        )}
        <div className="toolbar-spacer" />
        {hasCorrect && (
          <label className="filter-check" title="Keep the samples the model got wrong (column “correct” is false)">
            <input type="checkbox" checked={f.flags.correct === false} onChange={(e) => set(withFlag(f, 'correct', e.target.checked ? false : null))} data-testid="filter-misclassified" />
            Misclassified only
          </label>
        )}
        {otherFlags.length > 0 && (
          <select
            className="filter-select"
            value=""
            onChange={(e) => {
              const [name, v] = e.target.value.split('\u0000');
              if (name) set(withFlag(f, name, v === 'true'));
            }}
            aria-label="Keep samples where a yes/no column is true or false"
          >
            <option value="">Yes/no column…</option>
            {otherFlags.flatMap((c) => [
              <option key={`${c.name}-t`} value={`${c.name}\u0000true`}>{`${c.name} is true`}</option>,
              <option key={`${c.name}-f`} value={`${c.name}\u0000false`}>{`${c.name} is false`}</option>,
            ])}
          </select>
        )}
        {numeric.length > 0 && (
          <select
            className="filter-select"
            value=""
            onChange={(e) => e.target.value && setPicked((p) => [...p, e.target.value])}
            aria-label="Filter a range of a numeric column"
            data-testid="filter-add-range"
          >
            <option value="">Range of…</option>
            {numeric
              .filter((c) => !brushes.includes(c.name))
              .map((c) => (
                <option key={c.name} value={c.name}>
                  {c.name}
                </option>
              ))}
          </select>
        )}
        <span className="filter-count muted small" data-testid="filter-count" aria-live="polite">
          {param ? (kept.data ? `${formatCount(kept.data.ids.length)} of ${formatCount(run.n_samples)} samples` : kept.error ? '' : 'counting…') : `all ${formatCount(run.n_samples)} samples`}
        </span>
        {active && (
          <button type="button" className="btn btn-small" onClick={() => { setPicked([]); set(NO_FILTER); }} data-testid="filter-clear">
            Clear filter
          </button>
        )}
      </div>
      {(brushes.length > 0 || chips.length > 0 || kept.error) && (
        <div className="filter-row filter-row-detail">
          {chips.map((c) => (
            <span key={c.key} className="filter-chip" data-testid="filter-chip">
              {c.text}
              <button type="button" onClick={() => set(c.remove(f))} aria-label={`Remove “${c.text}”`}>
                ✕
              </button>
            </span>
          ))}
          {brushes.map((name) => (
            <RangeBrush
              key={name}
              run={run.id}
              column={name}
              range={f.ranges[name] ?? null}
              onChange={(range) => set(withRange(f, name, range))}
              onRemove={() => {
                setPicked((p) => p.filter((c) => c !== name));
                set(withRange(f, name, null));
              }}
            />
          ))}
          {kept.error && (
            <span className="filter-error" role="alert" data-testid="filter-error">
              {kept.error instanceof ApiError ? kept.error.detail : kept.error.message}
            </span>
          )}
        </div>
      )}
    </section>
  );
}

/** The search box: typing updates the URL after a pause; Escape clears it. */
function SearchBox({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  const [text, setText] = useState(value);
  // the latest onChange: a label clicked while the wait runs must not be undone when it ends
  const latest = useRef(onChange);
  latest.current = onChange;
  useEffect(() => setText(value), [value]);
  useEffect(() => {
    if (text === value) return;
    const t = window.setTimeout(() => latest.current(text), SEARCH_DELAY_MS);
    return () => window.clearTimeout(t);
  }, [text]); // only typing starts the wait
  return (
    <input
      type="search"
      className="filter-search"
      placeholder="Search texts, labels, metadata…"
      value={text}
      onChange={(e) => setText(e.target.value)}
      onKeyDown={(e) => {
        if (e.key === 'Enter') onChange(text);
        if (e.key === 'Escape') {
          setText('');
          onChange('');
        }
      }}
      aria-label="Search the samples' texts, labels and metadata"
      maxLength={200}
      data-testid="filter-search"
    />
  );
}
