import { useEffect, useMemo, useRef, useState, type RefObject } from 'react';
import { flushSync } from 'react-dom';
import createScatterplot from 'regl-scatterplot';
import type { RunInfo, ScatterScores } from '../../api';
import { ErrorState, Spinner } from '../../components/common';
import { useSize } from '../../components/useSize';
import { useCssVar, useSampleScores, type Theme } from '../../hooks';
import { categoricalColor, MISSING_COLOR } from '../../lib/colors';
import { formatScore } from '../../lib/format';
import { canvasExporters } from '../../lib/png';
import { linearScale, type LinearScale } from '../../lib/scale';
import { columnOf, pointRows, scatterPoints, type ScatterBasis } from '../../lib/scatterPoints';
import { buildSpatialIndex, emptySpatialIndex, spatialIndexOf } from '../../lib/spatialIndex';
import { axisName, axisText, pointSizeFor, ticksOf, type Coloring, type Tick } from './axes';
import { ScatterTooltip } from './ScatterTooltip';

type Scatterplot = ReturnType<typeof createScatterplot>;

export interface ScatterPlotProps {
  frameRef: RefObject<HTMLDivElement | null>;
  basis: ScatterBasis;
  /** Scores on (at least) components `x` and `y`, quantised for drawing; others (a previous axis pair) are not drawn. */
  scores: ScatterScores | null;
  /** The layer drawn (the tooltip reads a hovered sample's exact scores from it). */
  layer: string;
  x: number;
  y: number;
  coloring: Coloring | null;
  /** The colour column is on its way: the first draw waits for it (no uncoloured frame first). */
  coloringPending?: boolean;
  labelCodes: Int32Array | Float32Array | null;
  mode: 'panZoom' | 'lasso';
  theme: Theme;
  /** The run drawn (its size, id and how its samples are rendered). */
  run: RunInfo;
  /** Each component's share of variance (PCA axis titles). */
  ratios: number[];
  /** Label names in code order (the tooltip's label). */
  labels: string[];
  /** The lasso selection (sorted ids) and the sample marked with the reticle. */
  selection: number[];
  sample: number | null;
  /** A lasso (or a double click clearing it) chose these sorted ids. */
  onSelect: (selection: number[]) => void;
  /** A click on one point. */
  onOpen: (id: number) => void;
  /** The ids the shared filter keeps (the others are hidden); null: every point. */
  kept?: Int32Array | null;
}

/** The spatial index of one set of positions: to build in a worker, being built, or built (undefined data: failed). */
interface PointIndex {
  scores: ScatterScores;
  xi: number;
  yi: number;
  settled: boolean;
  data: ArrayBuffer | undefined;
  /** Starts the build (once) and resolves when it is settled. */
  ready: () => Promise<void>;
}

/** The one-point draw that compiles the pipelines waits this long for the data to show up first. */
const WARM_UP_AFTER_MS = 50;

/** Below this many points the index is built at once on the main thread (tens of milliseconds). */
const LAZY_INDEX_POINTS = 100_000;

function pointIndex(scores: ScatterScores, xi: number, yi: number, x: Float32Array, y: Float32Array): PointIndex {
  if (x.length < LAZY_INDEX_POINTS) return { scores, xi, yi, settled: true, data: buildSpatialIndex(x, y), ready: () => Promise.resolve() };
  let building: Promise<void> | null = null;
  const entry: PointIndex = { scores, xi, yi, settled: false, data: undefined, ready: () => building ?? (building = build()) };
  // started after the first draw: on a busy machine the worker would take CPU from that frame
  const build = () =>
    spatialIndexOf(x, y).then(
      (data) => {
        entry.data = data;
        entry.settled = true;
      },
      () => {
        entry.settled = true; // regl-scatterplot builds its own in the swap's draw
      },
    );
  return entry;
}

/**
 * The WebGL scatter of all samples (regl-scatterplot): pan, zoom, hover, lasso, click to open.
 * It only renders its props; the selection and the opened sample come in and go out through them.
 */
export function ScatterPlot({ frameRef, basis, scores, layer, x, y, coloring, coloringPending = false, labelCodes, mode, theme, run, ratios, labels, selection, sample, onSelect, onOpen, kept = null }: ScatterPlotProps) {
  const [boxRef, size] = useSize<HTMLDivElement>();
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const plotRef = useRef<Scatterplot | null>(null);
  const scalesRef = useRef<{ x: LinearScale; y: LinearScale }>({ x: linearScale([-1, 1]), y: linearScale([-1, 1]) });
  const [ticks, setTicks] = useState<{ x: Tick[]; y: Tick[] }>({ x: [], y: [] });
  const [hover, setHover] = useState<{ id: number; left: number; top: number } | null>(null);
  const [glError, setGlError] = useState<Error | null>(null);
  const [drawn, setDrawn] = useState(false);
  const bg = useCssVar('--bg-panel', theme);
  const selectionRef = useRef<number[]>(selection);
  selectionRef.current = selection;
  const lassoing = useRef(false);
  const lassoEndedAt = useRef(-Infinity);
  const handlers = useRef({ onSelect, onOpen });
  handlers.current = { onSelect, onOpen };
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
    performance.mark?.('ee:scatter-plot');
    const canvas = canvasRef.current;
    canvasExporters.set(canvas, () => sp.export(undefined));
    // one point drawn while the data is on its way: software WebGL (SwiftShader) compiles each
    // pipeline at its first draw, and the first million-point frame then skips that (0.2 s).
    // Not when the data is already in (answers that came before the app: React shows them
    // after this mount, hence the short wait), where the points' own draw would wait for it
    const warmUp = window.setTimeout(() => {
      if (latestPoints.current || plotRef.current !== sp) return;
      drawQueue.current = drawQueue.current.then(() => sp.draw([[0, 0, 0]], { zDataType: 'categorical' })).catch(() => undefined);
    }, WARM_UP_AFTER_MS);
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
    const keepSelection = () => {
      const keep = selectionRef.current;
      if (keep.length) sp.select(keep, { preventEvent: true });
      else sp.deselect({ preventEvent: true });
    };
    sp.subscribe('select', ({ points }: { points: number[] }) => {
      const wasLasso = lassoing.current;
      lassoing.current = false;
      if (wasLasso && !indexedRef.current) {
        keepSelection(); // a lasso before the index is built found nothing: not an empty selection
        return;
      }
      if (!wasLasso && points.length === 1) {
        // a click on one point opens it; the lasso selection stays as it was
        keepSelection();
        // a lasso closed where it began ends in a "click": that is no click on a point
        if (performance.now() - lassoEndedAt.current > 400) handlers.current.onOpen(points[0]);
        return;
      }
      const selection = Array.from(points).sort((a, b) => a - b);
      selectionRef.current = selection;
      handlers.current.onSelect(selection);
    });
    sp.subscribe('deselect', () => {
      if (lassoing.current && !indexedRef.current) {
        lassoing.current = false;
        keepSelection();
        return;
      }
      if (!selectionRef.current.length) return;
      selectionRef.current = [];
      handlers.current.onSelect([]);
    });
    return () => {
      window.clearTimeout(warmUp);
      plotRef.current = null;
      pointsDrawn.current = false;
      indexedRef.current = false;
      setIndexed(false);
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

  // the points: positions from the scores' columns of x and y, colour values from the column
  const xi = scores ? columnOf(scores, x) : -1;
  const yi = scores ? columnOf(scores, y) : -1;
  const points = useMemo(() => (scores && xi >= 0 && yi >= 0 ? scatterPoints(scores, xi, yi, coloring) : null), [scores, xi, yi, coloring]);
  // their spatial index (hover, lasso), built in a worker once per positions (a new colouring
  // keeps it), started after their first draw. That draw goes out with an empty index, and a
  // redraw swaps the real one in when it is built (regl-scatterplot would build it inside draw())
  const indexRef = useRef<PointIndex | null>(null);
  if (points && scores && (indexRef.current?.scores !== scores || indexRef.current.xi !== xi || indexRef.current.yi !== yi)) {
    indexRef.current = pointIndex(scores, xi, yi, points.x, points.y);
  }
  const [indexed, setIndexed] = useState(false);
  const indexedRef = useRef(false);

  // draws are serialised: regl-scatterplot refuses a draw while the previous one is running
  const drawQueue = useRef<Promise<void>>(Promise.resolve());
  // the first draw waits for the colours on their way (not a second, recoloured frame after it)
  const waitForColours = coloringPending && !drawn;
  const pointsDrawn = useRef(false); // the points drawn once (the warm-up point does not count)
  const latestPoints = useRef(points);
  latestPoints.current = points;
  useEffect(() => {
    const sp = plotRef.current;
    const entry = indexRef.current;
    if (!sp || !points || !entry || waitForColours) return;
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
        const wasDrawn = pointsDrawn.current;
        // the first draw starts at the origin: set before it, not after (a second 1M-point frame)
        if (!wasDrawn) sp.zoomToOrigin();
        const built = entry.settled;
        if (!wasDrawn) performance.mark?.('ee:scatter-draw');
        await sp.draw(pointRows(points), {
          zDataType: points.zType, transition: wasDrawn, transitionDuration: 350, select: selectionRef.current, spatialIndex: built ? entry.data : emptySpatialIndex(),
        });
        if (plotRef.current !== sp) return;
        if (!wasDrawn) performance.mark?.('ee:scatter-drawn');
        pointsDrawn.current = true;
        indexedRef.current = built;
        const { width, height } = sizeRef.current;
        // committed now, not after the next frame (at a million points a frame takes a while)
        flushSync(() => {
          setIndexed(built);
          setDrawn(true);
          setDrawCount((c) => c + 1);
          setTicks({ x: ticksOf(scalesRef.current.x, width, true), y: ticksOf(scalesRef.current.y, height, false) });
        });
        if (built) return;
        // the same points again, with their index once it is built (the queue does not wait for it)
        void entry.ready().then(() => {
          drawQueue.current = drawQueue.current
            .then(async () => {
              if (latestPoints.current !== points || plotRef.current !== sp) return; // a later draw swaps it in
              await sp.draw(pointRows(points), { zDataType: points.zType, preventFilterReset: true, select: selectionRef.current, spatialIndex: entry.data });
              if (plotRef.current !== sp) return;
              indexedRef.current = true;
              setIndexed(true);
              setDrawCount((c) => c + 1);
            })
            .catch((err: unknown) => {
              if (plotRef.current === sp) setGlError(err instanceof Error ? err : new Error(String(err)));
            });
        });
      })
      .catch((err: unknown) => {
        if (plotRef.current === sp) setGlError(err instanceof Error ? err : new Error(String(err)));
      });
  }, [points, ready, waitForColours]);

  // a selection from the URL (a pasted link, back/forward)
  const selKey = selection.join(',');
  useEffect(() => {
    const sp = plotRef.current;
    if (!sp || !drawn) return;
    if (selection.length) sp.select(selection, { preventEvent: true });
    else sp.deselect({ preventEvent: true });
  }, [selKey, drawn]);

  // the shared filter hides the points it does not keep (again after every draw)
  const [drawCount, setDrawCount] = useState(0);
  useEffect(() => {
    const sp = plotRef.current;
    if (!sp || !drawn) return;
    drawQueue.current = drawQueue.current
      .then(() => (kept ? sp.filter(Array.from(kept), { preventEvent: true }) : sp.unfilter({ preventEvent: true })))
      .catch(() => undefined);
  }, [kept, drawn, drawCount]);

  // the sample open in the sample view is marked with the reticle
  useEffect(() => {
    const sp = plotRef.current;
    if (!sp || !drawn) return;
    sp.hover(sample ?? -1, { preventEvent: true });
  }, [sample, drawn]);

  const hoverRow = hover && scores && points && hover.id < scores.rows ? hover.id : null;
  // the tooltip's numbers are the exact scores (the drawn positions are quantised)
  const exact = useSampleScores(run.id, hoverRow, layer, basis);
  const scoreText = (c: number) => `${axisName(basis, c)} ${exact && c < exact.length ? formatScore(exact[c]) : '…'}`;
  const labelOf = (id: number): string | null => {
    if (!labelCodes) return null;
    const c = labelCodes[id];
    return c >= 0 && c < labels.length ? labels[c] : null;
  };

  return (
    <div className="scatter-frame" ref={frameRef}>
      <div className="scatter-axis-y" aria-hidden="true">
        <span>
          {axisText(basis, y, ratios)}
        </span>
      </div>
      <div className="scatter-canvas-box" ref={boxRef} data-testid="scatter-canvas" data-drawn={drawn ? 'true' : 'false'} data-indexed={indexed ? 'true' : 'false'} data-points={points?.n ?? 0} data-shown={kept ? kept.length : points?.n ?? 0}>
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
            run={run}
            id={hoverRow}
            left={hover.left}
            top={hover.top}
            width={size.width}
            label={labelOf(hoverRow)}
            labelColor={(() => {
              const l = labelOf(hoverRow);
              return l ? categoricalColor(labels.indexOf(l)) : MISSING_COLOR;
            })()}
            xText={scoreText(x)}
            yText={scoreText(y)}
          />
        )}
      </div>
      <div className="scatter-axis-x" aria-hidden="true">
        {axisText(basis, x, ratios)}
      </div>
    </div>
  );
}
