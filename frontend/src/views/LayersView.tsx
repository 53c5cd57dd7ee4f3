import { useRef } from 'react';
import type { Associations } from '../api';
import { EmptyState, ErrorState, Spinner } from '../components/common';
import { PngButton } from '../components/PngButton';
import { useAppSlices } from '../context';
import { useAssociationsOf, useNeighbourCorrelations } from '../hooks';
import { chosenLayers } from '../lib/analysis';
import { CorrGraph } from './layers/CorrGraph';
import { HeatmapCard } from './layers/HeatmapCard';

/** Components of the chosen layers as columns of nodes, linked by |r| between neighbours; and a heatmap. */
export function LayersView() {
  const { run, state, update } = useAppSlices('app', 'layers');
  const chosen = chosenLayers(run, state.rows);
  const graphRef = useRef<HTMLElement>(null);
  const { pairs, corr } = useNeighbourCorrelations(run.id, chosen);
  // what each component reads as, for the node titles and the details panel; optional
  const assoc = useAssociationsOf(run.id, chosen);
  const assocOf = (layer: string): Associations | null => assoc.data?.[chosen.indexOf(layer)] ?? null;

  const toggleLayer = (name: string) => {
    const names = run.layers.map((l) => l.name);
    const next = chosen.includes(name) ? chosen.filter((n) => n !== name) : names.filter((n) => n === name || chosen.includes(n));
    if (next.length < 2) return;
    update({ rows: next.length === names.length ? [] : next, node: state.node && next.includes(state.node.layer) ? state.node : null });
  };

  return (
    <div className="view layers-view" data-testid="layers">
      <div className="toolbar">
        <div className="toolbar-title">
          <h2>Components across layers</h2>
          <span className="muted">How the principal components of one layer carry over into the next: links join components whose scores correlate.</span>
        </div>
      </div>

      {run.layers.length < 2 ? (
        <EmptyState title="One layer only" testId="layers-empty">
          Relating layers needs a run with at least two layers; this one has only <code>{run.layers[0]?.name}</code>.
        </EmptyState>
      ) : (
        <>
          <section className="card corr-card" ref={graphRef}>
            <div className="card-head corr-head">
              <div className="layer-chips" role="group" aria-label="Layers to show">
                {run.layers.map((l) => {
                  const on = chosen.includes(l.name);
                  return (
                    <button
                      key={l.name}
                      type="button"
                      className={`row-toggle${on ? ' on' : ''}`}
                      aria-pressed={on}
                      disabled={on && chosen.length <= 2}
                      onClick={() => toggleLayer(l.name)}
                      title={on ? (chosen.length <= 2 ? 'At least two layers are needed' : `Hide ${l.name}`) : `Show ${l.name}`}
                      data-testid="layer-chip"
                      data-layer={l.name}
                    >
                      <span className="mono">{l.name}</span>
                    </button>
                  );
                })}
              </div>
              <div className="toolbar-spacer" />
              <ThresholdControl />
              <PngButton target={graphRef} name={`${run.id}-components-across-layers`} title="Download the graph as PNG" />
            </div>
            {corr.error ? (
              <ErrorState error={corr.error} title="Could not correlate the layers' components" onRetry={corr.retry} />
            ) : corr.data && corr.data.length === pairs.length ? (
              <CorrGraph
                layers={chosen}
                matrices={corr.data}
                pairs={pairs.map(([a, b]) => ({ left: a, right: b }))}
                assocOf={assocOf}
                loading={corr.loading}
              />
            ) : (
              <div className="corr-loading" aria-busy="true">
                <Spinner label="Correlating components" /> <span className="muted">Correlating the components of {chosen.length} layers…</span>
              </div>
            )}
          </section>
          <HeatmapCard chosen={chosen} />
        </>
      )}
      {state.node && !chosen.includes(state.node.layer) && (
        <button type="button" className="link-button small" onClick={() => update({ node: null })}>
          Clear the highlighted component
        </button>
      )}
    </div>
  );
}

function ThresholdControl() {
  const { state, update } = useAppSlices('layers');
  return (
    <label className="n-control threshold-control">
      <span>Link when |r| ≥</span>
      <input
        type="range"
        min={0.05}
        max={0.95}
        step={0.05}
        value={state.threshold}
        onChange={(e) => update({ threshold: Number(e.target.value) }, { replace: true })}
        aria-label="Correlation threshold for links"
        data-testid="threshold-input"
      />
      <output className="n-value" data-testid="threshold-value">
        {state.threshold.toFixed(2)}
      </output>
    </label>
  );
}







