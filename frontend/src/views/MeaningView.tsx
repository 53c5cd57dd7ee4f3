import { type AssociationColumn } from '../api';
import { EmptyState, ErrorState, Skeleton } from '../components/common';
import { useApp, useAppSlices } from '../context';
import { useAssociations } from '../hooks';
import { componentMeaning, formatStatistic, formatStatValue, strength, strongestColumn } from '../lib/analysis';
import { formatPercent, pcName } from '../lib/format';

/** The layer picker shared by the analysis views: changes the focused layer. */
export function LayerSelect({ testId = 'layer-select' }: { testId?: string }) {
  const { run, layer, update } = useApp();
  return (
    <label className="field">
      <span>Layer</span>
      <select value={layer.name} onChange={(e) => update({ layer: e.target.value })} data-testid={testId} aria-label="Layer">
        {run.layers.map((l) => (
          <option key={l.name} value={l.name}>
            {l.name}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Background of a strength in [0, 1]: the heat colour mixed into the panel. */
export function strengthStyle(s: number): React.CSSProperties {
  if (!Number.isFinite(s)) return {};
  const pct = Math.round(8 + s * 84);
  return {
    background: `color-mix(in srgb, var(--heat) ${pct}%, var(--bg-panel))`,
    color: s > 0.5 ? 'var(--heat-text)' : undefined,
  };
}

const STAT_NAME = { eta2: 'η²', r: 'r' } as const;

/** Components x columns (label and metadata): eta² or r, coloured by strength; click to probe. */
export function MeaningView() {
  const { run, layer, state, update } = useAppSlices('scatter');
  const assoc = useAssociations(run.id, layer.name);
  const columns = assoc.data?.columns ?? [];
  const skipped = Object.entries(assoc.data?.skipped ?? {});
  const summaryColumn = componentMeaning(columns, 0, state.color)?.column ?? null;

  const open = (pc: number, column: AssociationColumn) => update({ tab: 'probe', pc, q: 0.5, color: column.name });

  return (
    <div className="view meaning-view" data-testid="meaning">
      <div className="toolbar">
        <div className="toolbar-title">
          <h2>What the components encode</h2>
          <span className="muted">
            Each component against the labels and metadata: η² for categories (share of the component's variance the
            categories explain), r for numbers. Click a cell to probe that component.
          </span>
        </div>
        <div className="toolbar-spacer" />
        <LayerSelect testId="meaning-layer-select" />
      </div>

      {assoc.error ? (
        <ErrorState error={assoc.error} title={`Could not relate the components of ${layer.name} to the labels and metadata`} onRetry={assoc.retry} />
      ) : assoc.loading && !assoc.data ? (
        <div className="card meaning-card" aria-busy="true">
          {Array.from({ length: Math.min(layer.n_components, 8) }, (_, i) => (
            <Skeleton key={i} height={26} className="meaning-skeleton-row" />
          ))}
        </div>
      ) : columns.length === 0 ? (
        <EmptyState title="Nothing to relate the components to" testId="meaning-empty">
          This run has no labels and no metadata columns
          {skipped.length ? ' that could be used' : ''}. Explore it with <code>labels=</code> or <code>metadata=</code> to see what
          each component separates.
        </EmptyState>
      ) : (
        <section className="card meaning-card">
          <div className="meaning-scroller">
            <table className="assoc-table" data-testid="association-table">
              <thead>
                <tr>
                  <th scope="col" className="assoc-pc">Component</th>
                  {columns.map((c) => (
                    <th key={c.name} scope="col" className="assoc-col" title={c.kind === 'categorical' ? 'eta squared: 0 (no separation) … 1' : 'Pearson r: −1 … +1'}>
                      <span className="assoc-col-name">{c.name}</span>
                      <span className="assoc-col-stat">{STAT_NAME[c.statistic]}</span>
                    </th>
                  ))}
                  <th scope="col" className="assoc-summary-head">
                    Reads as{summaryColumn ? <span className="muted"> ({summaryColumn})</span> : null}
                  </th>
                </tr>
              </thead>
              <tbody>
                {layer.explained_variance_ratio.map((ratio, pc) => {
                  const meaning = componentMeaning(columns, pc, state.color);
                  const best = strongestColumn(columns, pc);
                  return (
                    <tr key={pc} data-testid="assoc-row" data-component={pc}>
                      <th scope="row" className="assoc-pc">
                        <span className="assoc-pc-name">{pcName(pc)}</span>
                        <span className="assoc-pc-var">
                          <span className="assoc-var-bar" style={{ width: `${Math.min(100, (ratio / (layer.explained_variance_ratio[0] || 1)) * 100)}%` }} />
                          <span className="assoc-var-text">{formatPercent(ratio)}</span>
                        </span>
                      </th>
                      {columns.map((c) => {
                        const v = c.values[pc] ?? null;
                        const s = strength(v);
                        return (
                          <td key={c.name} className="assoc-td">
                            <button
                              type="button"
                              className={`assoc-cell${best?.name === c.name ? ' best' : ''}`}
                              style={strengthStyle(s)}
                              onClick={() => open(pc, c)}
                              title={`${pcName(pc)} · ${c.name}: ${formatStatistic(c.statistic, v, 3)}\n${c.summaries[pc] ?? ''}\nClick to probe ${pcName(pc)}`}
                              data-testid="assoc-cell"
                              data-column={c.name}
                              data-component={pc}
                              data-value={v === null ? '' : v.toFixed(4)}
                            >
                              {formatStatValue(c.statistic, v)}
                            </button>
                          </td>
                        );
                      })}
                      <td className="assoc-summary" title={meaning?.summary}>
                        {meaning?.summary || <span className="muted">–</span>}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <div className="meaning-foot">
            <span className="strength-legend" aria-hidden="true">
              <span className="muted small">weak</span>
              {[0, 0.25, 0.5, 0.75, 1].map((s) => (
                <span key={s} className="strength-swatch" style={strengthStyle(s)} />
              ))}
              <span className="muted small">strong</span>
            </span>
            <span className="muted small">Colour: η², or |r| with the sign printed. Outlined: the column each component relates to most.</span>
          </div>
          {skipped.length > 0 && (
            <p className="hint" data-testid="assoc-skipped">
              Left out: {skipped.map(([name, why]) => `${name} (${why})`).join('; ')}
            </p>
          )}
        </section>
      )}
    </div>
  );
}
