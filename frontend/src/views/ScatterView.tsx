import { useEffect, useMemo, useRef, useState, type RefObject } from 'react';
import createScatterplot from 'regl-scatterplot';
import { getColumnValues, getScores, renderUrl, type ColumnInfo, type ScoreMatrix } from '../api';
import { ErrorState, LabelChip, Spinner } from '../components/common';
import { CategoricalLegend, NumericLegend } from '../components/Legend';
import { useSize } from '../components/useSize';
import { useApp } from '../context';
import { useAsync, useCssVar, useSampleText } from '../hooks';
import { extent, matrixColumn } from '../lib/binary';
import { categoricalColor, MISSING_COLOR, niceTicks, numericScale, rampColors } from '../lib/colors';
import { formatPercent, formatScore, formatTick, pcName, tickStep } from '../lib/format';
import { colorColumn, LABEL_COLUMN } from '../lib/runInfo';
import { linearScale, toNdc, type LinearScale } from '../lib/scale';
import { useBasis } from '../basis';
import { BasisBar } from '../components/BasisBar';
import { PngButton } from '../components/PngButton';
import { canvasExporters } from '../lib/png';
import { SelectionPanel } from './SelectionPanel';

/** An axis's name and (PCA) variance share: "PC 2 · 14.1%" or "IC 2". */
function axisText(basis: 'pca' | 'ica', i: number, ratios: number[]): string {
  return basis === 'ica' ? `IC ${i + 1}` : `${pcName(i)} · ${formatPercent(ratios[i] ?? NaN)}`;
}
function axisName(basis: 'pca' | 'ica', i: number): string {
  return basis === 'ica' ? `IC ${i + 1}` : pcName(i);
}

type Scatterplot = ReturnType<typeof createScatterplot>;

interface Coloring {
  column: ColumnInfo | null;
  values: Int32Array | Float32Array | null;
}

function pointSizeFor(n: number): number {
  if (n <= 2_000) return 6;
  if (n <= 20_000) return 4;
  if (n <= 200_000) return 2.5;
  return 1.5;
}

/** Scatter of all samples on two components, coloured by a column, with hover and lasso. */
export function ScatterView() {
  const { run, layer, state, update, theme } = useApp();
  const k = layer.n_components;
  const x = Math.min(state.x, k - 1);
  const y = Math.min(state.y, k - 1);
  const column = colorColumn(run, state.color);
  // the scatter shows two axes of a basis: PCA or ICA (a direction is one axis: probe it)
  const basis: 'pca' | 'ica' = state.basis === 'ica' ? 'ica' : 'pca';
  const resolved = useBasis(run, layer.name, basis, null, null);

  const all = useMemo(() => Array.from({ length: k }, (_, i) => i), [k]);
  const scores = useAsync((signal) => getScores(run.id, layer.name, all, signal, basis), [run.id, layer.name, all, basis]);
  const colors = useAsync<Coloring>(
    column ? async (signal) => ({ column, values: await getColumnValues(run.id, column.name, signal) }) : null,
    [run.id, column?.name],
  );

  const axisOptions = layer.explained_variance_ratio.map((r, i) => (
    <option key={i} value={i}>
      {basis === 'ica' ? `IC ${i + 1}` : `${pcName(i)} · ${formatPercent(r)}`}
    </option>
  ));

  const [mode, setMode] = useState<'panZoom' | 'lasso'>('panZoom');
  const frameRef = useRef<HTMLDivElement>(null);
  const hasLabels = run.columns.some((c) => c.name === LABEL_COLUMN);
  const labelValues = useAsync(hasLabels ? (signal) => getColumnValues(run.id, LABEL_COLUMN, signal) : null, [run.id, hasLabels]);

  return (
    <div className="view scatter-view" data-testid="scatter">
      <div className="toolbar scatter-toolbar">
        <label className="field">
          <span>X</span>
          <select value={x} onChange={(e) => update({ x: Number(e.target.value) })} data-testid="x-axis-select" aria-label="X axis component">
            {axisOptions}
          </select>
        </label>
        <label className="field">
          <span>Y</span>
          <select value={y} onChange={(e) => update({ y: Number(e.target.value) })} data-testid="y-axis-select" aria-label="Y axis component">
            {axisOptions}
          </select>
        </label>
        <button
          type="button"
          className="btn btn-icon"
          title="Swap axes"
          aria-label="Swap axes"
          onClick={() => update({ x: y, y: x })}
        >
          ⇄
        </button>
        <label className="field">
          <span>Colour</span>
          <select
            value={column?.name ?? 'none'}
            onChange={(e) => update({ color: e.target.value === LABEL_COLUMN ? null : e.target.value })}
            data-testid="color-select"
            aria-label="Colour by"
          >
            {run.columns.map((c) => (
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
          <button type="button" role="radio" aria-checked={mode === 'panZoom'} className={mode === 'panZoom' ? 'on' : ''} onClick={() => setMode('panZoom')} data-testid="mode-pan">
            Pan &amp; zoom
          </button>
          <button type="button" role="radio" aria-checked={mode === 'lasso'} className={mode === 'lasso' ? 'on' : ''} onClick={() => setMode('lasso')} data-testid="mode-lasso">
            Lasso
          </button>
        </div>
      </div>
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
              x={x}
              y={y}
              coloring={colors.data}
              labelCodes={labelValues.data}
              mode={mode}
              theme={theme}
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

function ScatterLegend({ coloring }: { coloring: Coloring }) {
  const { column, values } = coloring;
  const items = useMemo(() => {
    if (!column || !values || column.kind !== 'categorical') return [];
    const cats = (column.categories ?? []).map(String);
    const counts = new Array(cats.length + 1).fill(0);
    for (let i = 0; i < values.length; i += 1) {
      const c = values[i];
      counts[c >= 0 && c < cats.length ? c : cats.length] += 1;
    }
    const list = cats.map((label, i) => ({ label, color: categoricalColor(i), count: counts[i] }));
    if (counts[cats.length]) list.push({ label: '(missing)', color: MISSING_COLOR, count: counts[cats.length] });
    return list;
  }, [column, values]);
  if (!column || !values) return null;
  if (column.kind === 'categorical') return <CategoricalLegend items={items} title={column.name} />;
  const [min, max] = extent(values);
  let missing = 0;
  for (let i = 0; i < values.length; i += 1) if (!Number.isFinite(values[i])) missing += 1;
  return <NumericLegend title={column.name} min={min} max={max} missing={missing} />;
}

interface PlotProps {
  frameRef: RefObject<HTMLDivElement | null>;
  basis: 'pca' | 'ica';
  scores: ScoreMatrix | null;
  x: number;
  y: number;
  coloring: Coloring | null;
  labelCodes: Int32Array | Float32Array | null;
  mode: 'panZoom' | 'lasso';
  theme: string;
}

interface Tick {
  pos: number;
  text: string;
}

function ticksOf(scale: LinearScale, length: number, horizontal: boolean): Tick[] {
  const [a, b] = scale.domain();
  const count = Math.max(2, Math.floor(length / (horizontal ? 90 : 60)));
  const values = niceTicks(Math.min(a, b), Math.max(a, b), count);
  const step = tickStep(values);
  return values.map((v) => ({ pos: scale(v), text: formatTick(v, step) }));
}

function ScatterPlot({ frameRef, basis, scores, x, y, coloring, labelCodes, mode, theme }: PlotProps) {
  const { run, layer, labels, state, update, openSample } = useApp();
  const [boxRef, size] = useSize<HTMLDivElement>();
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const plotRef = useRef<Scatterplot | null>(null);
  const scalesRef = useRef<{ x: LinearScale; y: LinearScale }>({ x: linearScale([-1, 1]), y: linearScale([-1, 1]) });
  const [ticks, setTicks] = useState<{ x: Tick[]; y: Tick[] }>({ x: [], y: [] });
  const [hover, setHover] = useState<{ id: number; left: number; top: number } | null>(null);
  const [glError, setGlError] = useState<Error | null>(null);
  const [drawn, setDrawn] = useState(false);
  const bg = useCssVar('--bg-panel', theme as 'light' | 'dark');
  const selectionRef = useRef<number[]>(state.selection);
  selectionRef.current = state.selection;
  const lassoing = useRef(false);
  const lassoEndedAt = useRef(-Infinity);
  const handlers = useRef({ update, openSample });
  handlers.current = { update, openSample };
  const sizeRef = useRef(size);
  sizeRef.current = size;

  // create once the box has a size
  const ready = size.width > 0 && size.height > 0;
  useEffect(() => {
    if (!ready || !canvasRef.current) return;
    let sp: Scatterplot;
    try {
      sp = createScatterplot({
        canvas: canvasRef.current,
        width: sizeRef.current.width,
        height: sizeRef.current.height,
        xScale: scalesRef.current.x,
        yScale: scalesRef.current.y,
        pointSize: 4,
        pointSizeSelected: 2,
        pointOutlineWidth: 1.5,
        opacity: 0.85,
        opacityInactiveScale: 0.35,
        lassoMinDelay: 8,
        lassoMinDist: 2,
        lassoColor: '#4f6bed',
        showReticle: true,
        aspectRatio: 1,
      } as Parameters<typeof createScatterplot>[0]);
    } catch (err) {
      setGlError(new Error(`WebGL is not available in this browser, so the scatter cannot be drawn (${(err as Error).message}).`));
      return;
    }
    plotRef.current = sp;
    const canvas = canvasRef.current;
    canvasExporters.set(canvas, () => sp.export(undefined));
    const onView = () => {
      const { width, height } = sizeRef.current;
      setTicks({ x: ticksOf(scalesRef.current.x, width, true), y: ticksOf(scalesRef.current.y, height, false) });
    };
    sp.subscribe('view', onView);
    sp.subscribe('draw', onView);
    sp.subscribe('pointOver', (i: number) => {
      const [left, top] = sp.getScreenPosition(i) ?? [0, 0];
      setHover({ id: i, left, top });
    });
    sp.subscribe('pointOut', () => setHover(null));
    sp.subscribe('lassoStart', () => {
      lassoing.current = true;
    });
    sp.subscribe('lassoEnd', () => {
      lassoEndedAt.current = performance.now();
    });
    sp.subscribe('select', ({ points }: { points: number[] }) => {
      const wasLasso = lassoing.current;
      lassoing.current = false;
      if (!wasLasso && points.length === 1) {
        // a click on one point opens it; the lasso selection stays as it was
        const keep = selectionRef.current;
        if (keep.length) sp.select(keep, { preventEvent: true });
        else sp.deselect({ preventEvent: true });
        // a lasso closed where it began ends in a "click": that is no click on a point
        if (performance.now() - lassoEndedAt.current > 400) handlers.current.openSample(points[0]);
        return;
      }
      const selection = Array.from(points).sort((a, b) => a - b);
      selectionRef.current = selection;
      handlers.current.update({ selection });
    });
    sp.subscribe('deselect', () => {
      if (!selectionRef.current.length) return;
      selectionRef.current = [];
      handlers.current.update({ selection: [] });
    });
    return () => {
      plotRef.current = null;
      setDrawn(false);
      sp.destroy();
    };
  }, [ready]);

  useEffect(() => {
    const sp = plotRef.current;
    if (sp && size.width > 0 && size.height > 0) {
      sp.set({ width: size.width, height: size.height });
      setTicks({ x: ticksOf(scalesRef.current.x, size.width, true), y: ticksOf(scalesRef.current.y, size.height, false) });
    }
  }, [size.width, size.height]);

  useEffect(() => {
    plotRef.current?.set({ mouseMode: mode });
  }, [mode, drawn]);

  useEffect(() => {
    if (bg) plotRef.current?.set({ backgroundColor: bg });
    plotRef.current?.set({ reticleColor: theme === 'dark' ? [1, 1, 1, 0.45] : [0.1, 0.12, 0.2, 0.4] } as Parameters<Scatterplot['set']>[0]);
  }, [bg, theme, drawn]);

  // the points: positions from the scores, colour values from the column
  const points = useMemo(() => {
    if (!scores) return null;
    const xs = matrixColumn(scores, x);
    const ys = matrixColumn(scores, y);
    const [x0, x1] = extent(xs);
    const [y0, y1] = extent(ys);
    const nx = toNdc(xs, x0, x1);
    const ny = toNdc(ys, y0, y1);
    const n = scores.rows;
    const z = new Float32Array(n);
    let pointColor: string[] = ['#4f6bed'];
    let zType: 'categorical' | 'continuous' = 'categorical';
    const values = coloring?.values;
    const col = coloring?.column;
    if (values && col && values.length === n) {
      if (col.kind === 'categorical') {
        const m = col.categories?.length ?? 0;
        for (let i = 0; i < n; i += 1) z[i] = values[i] >= 0 && values[i] < m ? values[i] : m;
        pointColor = [...Array.from({ length: m }, (_, i) => categoricalColor(i)), MISSING_COLOR];
      } else {
        const [lo, hi] = extent(values);
        const s = numericScale(lo, hi);
        for (let i = 0; i < n; i += 1) {
          const t = s.normalize(values[i]);
          z[i] = Number.isNaN(t) ? 0 : t;
        }
        pointColor = rampColors(64);
        zType = 'continuous';
      }
    }
    return { x: nx.ndc, y: ny.ndc, z, xDomain: nx.domain, yDomain: ny.domain, pointColor, zType, n };
  }, [scores, x, y, coloring]);

  // draws are serialised: regl-scatterplot refuses a draw while the previous one is running
  const drawQueue = useRef<Promise<void>>(Promise.resolve());
  const latestPoints = useRef(points);
  latestPoints.current = points;
  useEffect(() => {
    const sp = plotRef.current;
    if (!sp || !points) return;
    drawQueue.current = drawQueue.current
      .then(async () => {
        if (latestPoints.current !== points || plotRef.current !== sp) return; // superseded
        // fresh scale objects: setting xScale updates the *current* yScale's domain, so
        // mutating the old objects in place would leave y with a stale domain
        scalesRef.current = { x: linearScale(points.xDomain), y: linearScale(points.yDomain) };
        sp.set({
          xScale: scalesRef.current.x,
          yScale: scalesRef.current.y,
          pointColor: points.pointColor,
          colorBy: 'valueA',
          pointSize: pointSizeFor(points.n),
        } as Parameters<Scatterplot['set']>[0]);
        const wasDrawn = sp.get('isPointsDrawn');
        await sp.draw(
          { x: points.x, y: points.y, valueA: points.z },
          { zDataType: points.zType, transition: wasDrawn, transitionDuration: 350, select: selectionRef.current },
        );
        if (plotRef.current !== sp) return;
        if (!wasDrawn) sp.zoomToOrigin();
        setDrawn(true);
        const { width, height } = sizeRef.current;
        setTicks({ x: ticksOf(scalesRef.current.x, width, true), y: ticksOf(scalesRef.current.y, height, false) });
      })
      .catch((err: unknown) => {
        if (plotRef.current === sp) setGlError(err instanceof Error ? err : new Error(String(err)));
      });
  }, [points, ready]);

  // a selection from the URL (a pasted link, back/forward)
  const selKey = state.selection.join(',');
  useEffect(() => {
    const sp = plotRef.current;
    if (!sp || !drawn) return;
    if (state.selection.length) sp.select(state.selection, { preventEvent: true });
    else sp.deselect({ preventEvent: true });
  }, [selKey, drawn]);

  // the sample open in the sample view is marked with the reticle
  useEffect(() => {
    const sp = plotRef.current;
    if (!sp || !drawn) return;
    sp.hover(state.sample ?? -1, { preventEvent: true });
  }, [state.sample, drawn]);

  const hoverRow = hover && scores && hover.id < scores.rows ? hover.id : null;
  const labelOf = (id: number): string | null => {
    if (!labelCodes) return null;
    const c = labelCodes[id];
    return c >= 0 && c < labels.length ? labels[c] : null;
  };

  return (
    <div className="scatter-frame" ref={frameRef}>
      <div className="scatter-axis-y" aria-hidden="true">
        <span>
          {axisText(basis, y, layer.explained_variance_ratio)}
        </span>
      </div>
      <div className="scatter-canvas-box" ref={boxRef} data-testid="scatter-canvas" data-drawn={drawn ? 'true' : 'false'} data-points={points?.n ?? 0}>
        <canvas ref={canvasRef} aria-label={`Scatter of ${run.n_samples} samples, ${axisName(basis, x)} against ${axisName(basis, y)}`} role="img" />
        <svg className="scatter-ticks" width={size.width} height={size.height} aria-hidden="true">
          {ticks.x
            .filter((t) => t.pos > 24 && t.pos < size.width - 24)
            .map((t, i) => (
              <g key={`x${i}`}>
                <line x1={t.pos} x2={t.pos} y1={size.height} y2={size.height - 5} />
                <text x={t.pos} y={size.height - 8} textAnchor="middle">
                  {t.text}
                </text>
              </g>
            ))}
          {ticks.y
            .filter((t) => t.pos > 16 && t.pos < size.height - 24)
            .map((t, i) => (
              <g key={`y${i}`}>
                <line x1={0} x2={5} y1={t.pos} y2={t.pos} />
                <text x={8} y={t.pos} dy="0.32em">
                  {t.text}
                </text>
              </g>
            ))}
        </svg>
        {(!scores || !drawn) && !glError && (
          <div className="scatter-loading">
            <Spinner label="Loading scores" />
            <span>Loading {run.n_samples.toLocaleString('en-US')} points…</span>
          </div>
        )}
        {glError && <ErrorState error={glError} title="Cannot draw the scatter" />}
        {hoverRow !== null && hover && scores && (
          <ScatterTooltip
            id={hoverRow}
            left={hover.left}
            top={hover.top}
            width={size.width}
            label={labelOf(hoverRow)}
            labelColor={(() => {
              const l = labelOf(hoverRow);
              return l ? categoricalColor(labels.indexOf(l)) : MISSING_COLOR;
            })()}
            xText={`${axisName(basis, x)} ${formatScore(scores.data[hoverRow * scores.cols + x])}`}
            yText={`${axisName(basis, y)} ${formatScore(scores.data[hoverRow * scores.cols + y])}`}
          />
        )}
      </div>
      <div className="scatter-axis-x" aria-hidden="true">
        {axisText(basis, x, layer.explained_variance_ratio)}
      </div>
    </div>
  );
}

function ScatterTooltip(props: { id: number; left: number; top: number; width: number; label: string | null; labelColor: string; xText: string; yText: string }) {
  const { run } = useApp();
  const isText = run.rendering_kind === 'text/plain';
  const text = useSampleText(run.id, props.id, isText);
  const flip = props.left > props.width - 240;
  return (
    <div
      className="scatter-tooltip"
      style={{ left: flip ? undefined : props.left + 14, right: flip ? props.width - props.left + 14 : undefined, top: Math.max(4, props.top - 20) }}
      data-testid="scatter-tooltip"
      role="tooltip"
    >
      {run.rendering_kind === 'image/png' && <img src={renderUrl(run.id, props.id)} alt="" className="tooltip-img" />}
      {isText && <p className="tooltip-text">{text ?? '…'}</p>}
      <div className="tooltip-meta">
        <strong>Sample {props.id}</strong>
        {props.label && <LabelChip label={props.label} color={props.labelColor} />}
        <span className="muted small">
          {props.xText} · {props.yText}
        </span>
      </div>
    </div>
  );
}
