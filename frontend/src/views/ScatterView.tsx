import { useMemo, useRef, useState } from 'react';
import { ErrorState } from '../components/common';
import { PngButton } from '../components/PngButton';
import { useAppSlices } from '../context';
import { useBasis, useColoring, useColumnValues, useFilterParam, useScatterScores, useSelection } from '../hooks';
import { colorColumn, LABEL_COLUMN } from '../lib/runInfo';
import { scatterBasis, shownComponents } from '../lib/scatterPoints';
import { ScatterControls, type MouseMode } from './scatter/ScatterControls';
import { ScatterLegend } from './scatter/ScatterLegend';
import { ScatterPlot } from './scatter/ScatterPlot';
import { SelectionPanel } from './SelectionPanel';

/** Scatter of all samples on two components, coloured by a column, with hover and lasso. */
export function ScatterView() {
  const { run, layer, labels, state, update, theme, openSample } = useAppSlices('app', 'scatter', 'basis');
  const k = layer.n_components;
  const x = Math.min(state.x, k - 1);
  const y = Math.min(state.y, k - 1);
  const column = colorColumn(run, state.color);
  const basis = scatterBasis(state.basis);
  const resolved = useBasis(run, layer.name, basis, null, null);

  // only the two components shown cross the wire, quantised to 16 bits (4 bytes a point, not 4k)
  const shown = useMemo(() => shownComponents(x, y), [x, y]);
  const scores = useScatterScores(run.id, layer.name, shown, basis);
  const colors = useColoring(run.id, column);
  const filter = useFilterParam();
  const kept = useSelection(run.id, filter);

  const [mode, setMode] = useState<MouseMode>('panZoom');
  const frameRef = useRef<HTMLDivElement>(null);
  const hasLabels = run.columns.some((c) => c.name === LABEL_COLUMN);
  const labelValues = useColumnValues(run.id, hasLabels ? LABEL_COLUMN : null);

  return (
    <div className="view scatter-view" data-testid="scatter">
      <ScatterControls
        basis={basis}
        resolved={resolved}
        ratios={layer.explained_variance_ratio}
        x={x}
        y={y}
        columns={run.columns}
        column={column}
        mode={mode}
        onChange={(patch) => update(patch)}
        onMode={setMode}
      />
      <div className="scatter-body">
        <div className="scatter-main card">
          <div className="scatter-png" data-png-skip="1">
            <PngButton target={frameRef} name={`${run.id}-${layer.name}-${basis}-${x + 1}-${y + 1}-scatter`} title="Download the scatter as PNG" />
          </div>
          {scores.error ? (
            <ErrorState error={scores.error} title={`Could not load the scores of ${layer.name}`} onRetry={scores.retry} />
          ) : (
            <ScatterPlot
              key={`${run.id}/${layer.name}/${basis}`}
              frameRef={frameRef}
              basis={basis}
              scores={scores.data}
              layer={layer.name}
              x={x}
              y={y}
              coloring={colors.data}
              coloringPending={column !== null && colors.loading}
              labelCodes={labelValues.data}
              mode={mode}
              theme={theme}
              run={run}
              ratios={layer.explained_variance_ratio}
              labels={labels}
              selection={state.selection}
              sample={state.sample}
              onSelect={(selection) => update({ selection })}
              onOpen={openSample}
              kept={filter ? kept.data?.ids ?? null : null}
            />
          )}
          <p className="hint scatter-hint" data-testid="lasso-hint">
            <kbd>Shift</kbd> + drag (or the <strong>Lasso</strong> mode) selects samples · scroll to zoom · drag to pan · click a point to open it ·
            double-click empty space to clear the selection
          </p>
        </div>
        <aside className="scatter-side">
          {colors.error && <ErrorState error={colors.error} title="Could not load the colour column" compact onRetry={colors.retry} />}
          {colors.data && <ScatterLegend coloring={colors.data} />}
          {state.selection.length > 0 ? (
            <SelectionPanel ids={state.selection} />
          ) : (
            <div className="card empty-selection">
              <div className="state-title">No selection</div>
              <p className="muted small">Lasso a group of points (hold Shift and drag) to see those samples and their labels here.</p>
            </div>
          )}
        </aside>
      </div>
    </div>
  );
}
