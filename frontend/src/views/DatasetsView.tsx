import { useEffect, useState } from 'react';
import { isRefusal, type RunInfo } from '../api';
import { EmptyState, ErrorState, Spinner } from '../components/common';
import { RunPairPicker } from '../components/RunPairPicker';
import { useAppSlices } from '../context';
import { useDatasetShift, useFilterParam } from '../hooks';
import { datasetPair, sharedLayers, sortShiftRows } from '../lib/datasets';
import { compatiblePair, datasetPairProblem, replacedPairNotice } from '../lib/pairs';
import { formatCount } from '../lib/format';
import { EndsCard } from './datasets/EndsCard';
import { HistogramCard } from './datasets/HistogramCard';
import { RankedCard } from './datasets/RankedCard';

/** One model over two data sets: which components moved, how far, and the samples at each end. */
export function DatasetsView() {
  const { runs, state, update } = useAppSlices('datasets');
  // the layers the server says compare, per pair (a layer reduced differently in the two runs does not)
  const [comparable, setComparable] = useState<{ pair: string; layers: string[] } | null>(null);
  const asked = datasetPair(runs, state.dsA, state.dsB);
  // only runs of one model can be compared; without any such pair, say so instead of failing
  const pair = asked && datasetPairProblem(runs.find((r) => r.id === asked[0])!, runs.find((r) => r.id === asked[1])!) === null ? asked : compatiblePair(runs, asked?.[0] ?? null, null, datasetPairProblem);
  if (!pair && runs.length >= 2) {
    return (
      <div className="view datasets-view" data-testid="datasets">
        <DatasetsTitle />
        <EmptyState title="No two runs come from the same model" testId="datasets-no-pair">
          Comparing data sets needs one model explored on two data sets — e.g. its test set and a shifted copy. The served
          runs ({runs.map((r) => r.name).join(', ')}) each come from another model.
        </EmptyState>
      </div>
    );
  }
  if (!pair) {
    return (
      <div className="view datasets-view" data-testid="datasets">
        <DatasetsTitle />
        <EmptyState title="Comparing data sets needs two runs" testId="datasets-needs-two">
          Serve two runs of the same model over different data — e.g. a test set and a shifted or out-of-distribution set — and
          this view ranks the components by how far the second set moved: <code>embedding-explorer serve runs/test runs/shifted</code>.
        </EmptyState>
      </div>
    );
  }
  const [idA, idB] = pair;
  const runA = runs.find((r) => r.id === idA)!;
  const runB = runs.find((r) => r.id === idB)!;
  const notice = replacedPairNotice(runs, state.dsA, state.dsB, pair, datasetPairProblem);
  const layers = sharedLayers(runA, runB);
  const pairKey = `${idA}\u0000${idB}`;
  const differs = (l: string) => comparable !== null && comparable.pair === pairKey && !comparable.layers.includes(l);
  const layer = state.dsLayer && layers.includes(state.dsLayer) ? state.dsLayer : layers[layers.length - 1] ?? null;
  return (
    <div className="view datasets-view" data-testid="datasets">
      {notice && (
        <div className="notice" role="status" data-testid="pair-notice">
          {notice} Showing “{runA.name}” and “{runB.name}”.
        </div>
      )}
      <div className="toolbar">
        <DatasetsTitle />
        <div className="toolbar-spacer" />
        <div className="datasets-pickers">
          <RunPairPicker
            runs={runs}
            a={idA}
            b={idB}
            onChange={(a, b) => update({ dsA: a, dsB: b, dsPc: null })}
            testIdPrefix="datasets"
            ariaA="Reference run (A)"
            ariaB="Other run (B)"
            swapTitle="Swap: make B the reference"
            swapAria="Swap the reference and the other run"
            titleA="The reference: its components are the axes"
            titleB="The other data set, read on A's components"
            problem={datasetPairProblem}
          />
          <label className="field">
            <span>Layer</span>
            <select value={layer ?? ''} onChange={(e) => update({ dsLayer: e.target.value, dsPc: null })} data-testid="datasets-layer" aria-label="Layer" disabled={!layers.length}>
              {layers.map((l) => (
                <option key={l} value={l} disabled={differs(l) && l !== layer} title={differs(l) ? 'This layer differs between the two runs (module, reduction or width)' : undefined}>
                  {differs(l) ? `${l} (differs)` : l}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
      {layer === null ? (
        <EmptyState title="These runs share no layer">
          “{runA.name}” and “{runB.name}” have no layer of the same name. Pick two runs of the same model.
        </EmptyState>
      ) : (
        <ShiftBody runA={runA} runB={runB} layer={layer} onLayers={(ls) => setComparable((c) => (c && c.pair === pairKey && c.layers.join('\u0000') === ls.join('\u0000') ? c : { pair: pairKey, layers: ls }))} />
      )}
    </div>
  );
}

function DatasetsTitle() {
  return (
    <div className="toolbar-title">
      <h2>Compare two data sets</h2>
      <span className="muted">One model over two data sets, on A's components: which moved, and what sits at their ends.</span>
    </div>
  );
}

function ShiftBody({ runA, runB, layer, onLayers }: { runA: RunInfo; runB: RunInfo; layer: string; onLayers: (layers: string[]) => void }) {
  const { state, update } = useAppSlices('datasets');
  const shift = useDatasetShift(runA.id, runB.id, layer, useFilterParam());
  const comparedLayers = shift.data?.layers;
  useEffect(() => {
    if (comparedLayers) onLayers(comparedLayers);
  }, [comparedLayers, onLayers]);
  if (shift.error) {
    return (
      <section className="card datasets-card">
        <ErrorState error={shift.error} title={`Could not compare “${runA.name}” with “${runB.name}”`} onRetry={isRefusal(shift.error) ? undefined : shift.retry} />
      </section>
    );
  }
  if (!shift.data) {
    return (
      <section className="card datasets-card datasets-loading" aria-busy="true" data-testid="datasets-loading">
        <Spinner label="Comparing" />
        <span className="muted">
          Projecting {formatCount(runB.n_samples)} samples of B on A's components of <span className="mono">{layer}</span>…
        </span>
      </section>
    );
  }
  const rows = sortShiftRows(shift.data.components, state.dsSort);
  const picked = rows.find((r) => r.index === state.dsPc) ?? rows[0] ?? null;
  return (
    <div className="datasets-grid">
      <RankedCard
        data={shift.data}
        rows={rows}
        sort={state.dsSort}
        onSort={(by) => update({ dsSort: by }, { replace: true })}
        picked={picked?.index ?? null}
        onPick={(pc) => update({ dsPc: pc }, { replace: true })}
        runA={runA}
        runB={runB}
      />
      {picked && (
        <div className="datasets-right">
          <HistogramCard runA={runA} runB={runB} layer={layer} row={picked} />
          <EndsCard runA={runA} runB={runB} layer={layer} row={picked} />
        </div>
      )}
    </div>
  );
}








