import type { RunInfo } from '../api';
import { VarianceBars } from '../components/VarianceBars';
import type { UpdateState } from '../hooks';
import { formatCount, formatPercent } from '../lib/format';
import { cumulative, galleryRows, runChange } from '../lib/runInfo';
import type { ViewState } from '../lib/urlState';

interface Props {
  runs: RunInfo[];
  run: RunInfo;
  focused: string;
  state: ViewState;
  update: UpdateState;
}


/** Runs and their layers: dimension, explained variance per component, cumulative share. */
export function Sidebar({ runs, run, focused, state, update }: Props) {
  const rows = galleryRows(run, state.rows, focused);
  const toggleRow = (name: string) => {
    const names = run.layers.map((l) => l.name);
    const next = rows.includes(name) ? rows.filter((r) => r !== name) : names.filter((n) => n === name || rows.includes(n));
    update({ rows: next.length ? next : [focused], layer: next.length && !next.includes(focused) ? next[0] : focused, tab: 'gallery' });
  };
  return (
    <nav className="sidebar" id="sidebar" aria-label="Runs and layers">
      {runs.map((r) => (
        <section key={r.id} className={`run-block${r.id === run.id ? ' current' : ''}`}>
          <button
            type="button"
            className="run-head"
            aria-current={r.id === run.id ? 'true' : undefined}
            onClick={() => r.id !== run.id && update(runChange(r, state))}
          >
            <span className="run-name">{r.name}</span>
            <span className="run-meta" title={r.model_class ?? undefined}>
              {formatCount(r.n_samples)} samples{r.model_class ? ` · ${shortClassName(r.model_class)}` : ''}
            </span>
          </button>
          {r.id === run.id && (
            <ul className="layer-list" data-testid="layer-list">
              {r.layers.map((l) => {
                const cum = cumulative(l.explained_variance_ratio);
                const isFocused = l.name === focused;
                const inRows = rows.includes(l.name);
                return (
                  <li key={l.name} className={`layer-item${isFocused ? ' focused' : ''}`} data-testid="layer-item" data-layer={l.name}>
                    <div className="layer-top">
                      <button
                        type="button"
                        className="layer-name"
                        aria-current={isFocused ? 'true' : undefined}
                        onClick={() =>
                          // a layer already shown as a row is focused; any other replaces the rows
                          update({ layer: l.name, rows: inRows ? rows : [l.name], pc: Math.min(state.pc, l.n_components - 1) })
                        }
                        title={`Focus layer ${l.name} (probe, scatter and sample scores use it)`}
                      >
                        {l.name}
                      </button>
                      <button
                        type="button"
                        className={`row-toggle${inRows ? ' on' : ''}`}
                        aria-pressed={inRows}
                        onClick={() => toggleRow(l.name)}
                        title={inRows ? `Remove ${l.name} from the gallery rows` : `Add ${l.name} as a gallery row, to compare layers`}
                      >
                        {inRows ? '✓ row' : '+ row'}
                      </button>
                    </div>
                    <div className="layer-meta">
                      <span>D = {formatCount(l.dim)}</span>
                      <span>{l.n_components} PCs</span>
                      {pcaMethodText(l.pca_method) && <span title="Principal components from a randomized SVD: close to, not exactly, the exact ones">{pcaMethodText(l.pca_method)}</span>}
                    </div>
                    <VarianceBars
                      ratios={l.explained_variance_ratio}
                      active={isFocused && state.tab === 'probe' && state.basis === 'pca' ? state.pc : null}
                      onPick={(c) => update({ layer: l.name, pc: c, tab: 'probe' })}
                    />
                    <div className="layer-cum">
                      <span>
                        PC 1: <strong>{formatPercent(l.explained_variance_ratio[0] ?? NaN)}</strong>
                      </span>
                      <span>
                        top {l.n_components}: <strong>{formatPercent(cum[cum.length - 1] ?? NaN)}</strong>
                      </span>
                    </div>
                  </li>
                );
              })}
            </ul>
          )}
        </section>
      ))}
      <p className="sidebar-hint">
        Bars: variance per component · line: cumulative share. Click a bar to probe that component.
      </p>
    </nav>
  );
}

/** The PCA method in words where it is not the exact default (null: exact, nothing to say). */
export function pcaMethodText(method: string): string | null {
  if (method === 'covariance_eigh') return null;
  if (method === 'randomized_svd') return 'approximate PCA';
  return method.replace(/_/g, ' ');
}

/** `pkg.module.ClassName` -> `ClassName`; the full path shows on hover. */
function shortClassName(dotted: string): string {
  return dotted.slice(dotted.lastIndexOf('.') + 1);
}
