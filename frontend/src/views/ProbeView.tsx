import { useMemo, useRef, type ReactNode } from 'react';
import type { SampleRef } from '../api';
import { BasisBar } from '../components/BasisBar';
import { EmptyState, ErrorState, Skeleton, Spinner } from '../components/common';
import { PngButton } from '../components/PngButton';
import { HIST_MARGIN, Histogram } from '../components/Histogram';
import { CategoricalLegend } from '../components/Legend';
import { ThumbGrid } from '../components/SampleThumb';
import { useSize } from '../components/useSize';
import { useAppSlices } from '../context';
import { useAssociations, useBasis, useFilterParam, useGallery, useHistogram, useQuantileSamples, useSliderQuantile } from '../hooks';
import { componentMeaning } from '../lib/analysis';
import { formatPercent, formatScore, pcName } from '../lib/format';
import { isolateLabel, labelShown } from '../lib/filter';
import { labelCounts } from '../lib/labels';
import { scoreAtQuantile, stepQuantile, type HistogramAxis } from '../lib/quantile';
import { labelColor } from '../lib/runInfo';
import { componentStat, NControl } from './GalleryView';

const BINS = 30;

/** Probe one component: its score histogram by label, a quantile slider and the samples there. */
export function ProbeView() {
  const { run, layer, labels, state, update } = useAppSlices('probe', 'gallery', 'basis', 'scatter', 'filter');
  const basis = useBasis(run, layer.name, state.basis, state.dirA, state.dirB);
  const key = basis.key;
  const n = state.n;
  const axis: HistogramAxis = state.axis;
  const setAxis = (a: HistogramAxis) => update({ axis: a }, { replace: true });

  const filter = useFilterParam();
  const gallery = useGallery(run.id, layer.name, n, key, true, filter);
  const components = gallery.data && gallery.data.basis === key ? gallery.data.components : null;
  const count = components ? components.length : state.basis === 'dir' ? 1 : layer.n_components;
  const pc = Math.max(0, Math.min(state.pc, count - 1));
  const hist = useHistogram(run.id, layer.name, pc, BINS, run.labels.present, key, filter);
  const extremes = components?.find((c) => c.index === pc) ?? null;
  const assoc = useAssociations(run.id, layer.name, key === 'pca');
  const meaning = key === 'pca' ? componentMeaning(assoc.data?.columns, pc, state.color) : null;
  const name = extremes?.name ?? (state.basis === 'ica' ? `IC ${pc + 1}` : state.basis === 'dir' ? basis.direction?.name ?? 'direction' : pcName(pc));
  const histRef = useRef<HTMLElement>(null);
  const stripsRef = useRef<HTMLDivElement>(null);

  // the slider: its value moves at once; the URL and the server follow, throttled
  const [q, moveTo] = useSliderQuantile(state.q, update);
  const quantile = useQuantileSamples({ run: run.id, layer: layer.name, pc, q, n, basis: key, filter });
  const near = quantile.data;

  const [plotRef, size] = useSize<HTMLDivElement>();
  const markerScore =
    near && Math.abs(near.q - q) < 1e-9 ? near.value ?? NaN : hist.data ? scoreAtQuantile(hist.data.edges, hist.data.counts, q) : NaN;

  const legendItems = useMemo(() => {
    if (!hist.data?.by_label) return [];
    const totals = Object.entries(hist.data.by_label).map(([label, v]) => ({ label, count: v.reduce((a, b) => a + b, 0) }));
    const order = (l: string) => (labels.indexOf(l) < 0 ? 1e9 : labels.indexOf(l));
    return totals.sort((a, b) => order(a.label) - order(b.label)).map((t) => ({ ...t, color: labelColor(labels, t.label) }));
  }, [hist.data, labels]);

  const stat = extremes ? componentStat(extremes, gallery.data?.separation) : '';
  if (basis.choice === 'dir' && (!basis.groupA || !basis.groupB)) {
    return (
      <div className="view probe-view" data-testid="probe">
        <div className="toolbar">
          <div className="toolbar-title">
            <h2>
              <span className="mono">{layer.name}</span> · a direction
            </h2>
            <span className="muted">From the mean of group A to the mean of group B, probed like a component.</span>
          </div>
          <div className="toolbar-spacer" />
          <BasisBar basis={basis} />
        </div>
        <EmptyState title="Define a direction" testId="direction-needed">
          Pick two labels above, or lasso two groups in the Scatter view and use them as A and B.
        </EmptyState>
      </div>
    );
  }

  return (
    <div className="view probe-view" data-testid="probe">
      <div className="toolbar">
        <div className="toolbar-title">
          <h2>
            <span className="mono">{layer.name}</span> · <span data-testid="probe-name">{name}</span>
          </h2>
          <span className="muted">
            {stat || '\u00a0'}
            {meaning && (
              <span className="probe-meaning" data-testid="probe-meaning" title={`${meaning.column}: ${meaning.stat}`}>
                {' · '}
                {meaning.summary} <span className="stat-chip">{meaning.column !== 'label' ? `${meaning.column}: ` : ''}{meaning.stat}</span>
              </span>
            )}
          </span>
        </div>
        {count > 1 && <div className="pc-stepper" role="group" aria-label="Component">
          <button type="button" className="btn btn-icon" onClick={() => update({ pc: pc - 1 })} disabled={pc <= 0} aria-label="Previous component">
            ‹
          </button>
          <select value={pc} onChange={(e) => update({ pc: Number(e.target.value) })} aria-label="Component" data-testid="probe-component-select">
            {(components ?? layer.explained_variance_ratio.map((r, i) => ({ index: i, name: pcName(i), explained_variance_ratio: r }))).map((c) => (
              <option key={c.index} value={c.index}>
                {c.name}
                {c.explained_variance_ratio !== null && c.explained_variance_ratio !== undefined ? ` · ${formatPercent(c.explained_variance_ratio)}` : ''}
              </option>
            ))}
          </select>
          <button type="button" className="btn btn-icon" onClick={() => update({ pc: pc + 1 })} disabled={pc >= count - 1} aria-label="Next component">
            ›
          </button>
        </div>}
        <div className="toolbar-spacer" />
        <BasisBar basis={basis} />
        <NControl />
      </div>

      <section className="card probe-hist-card" ref={histRef}>
        <div className="card-head">
          <h3>Score distribution</h3>
          <span className="muted small">{axis === 'score' ? `${BINS} quantile bins at their true widths: bar area = samples` : `${BINS} quantile bins of equal share: the label mix along the component`}</span>
          <div className="toolbar-spacer" />
          <div className="segmented" role="radiogroup" aria-label="Histogram axis">
            {(['quantile', 'score'] as const).map((a) => (
              <button key={a} type="button" role="radio" aria-checked={axis === a} className={axis === a ? 'on' : ''} onClick={() => setAxis(a)} data-testid={`axis-${a}`}>
                {a === 'score' ? 'Score axis' : 'Quantile axis'}
              </button>
            ))}
          </div>
          <PngButton target={histRef} name={`${run.id}-${layer.name}-${name}-histogram`} title="Download the histogram as PNG" />
        </div>
        <div className="probe-hist-body">
          <div className="probe-plot" ref={plotRef}>
            {basis.error || hist.error ? (
              <ErrorState error={(basis.error ?? hist.error)!} title="Could not load the histogram" onRetry={basis.error ? basis.retry : hist.retry} compact />
            ) : hist.data && size.width > 0 ? (
              <Histogram data={hist.data} labels={labels} axis={axis} width={size.width} markerQ={q} markerScore={markerScore} />
            ) : (
              <Skeleton height={190} />
            )}
            <div className="probe-slider" style={{ paddingLeft: HIST_MARGIN.left - 8, paddingRight: HIST_MARGIN.right - 8 }}>
              <input
                type="range"
                min={0}
                max={1}
                step={0.01}
                value={q}
                onChange={(e) => moveTo(Number(e.target.value))}
                onKeyDown={(e) => {
                  const next = stepQuantile(q, e.key);
                  if (next !== null) {
                    e.preventDefault();
                    moveTo(next);
                  }
                }}
                aria-label={`Position along ${name}, as a quantile of its scores`}
                aria-valuetext={`${formatPercent(q, 0)} quantile, score ${formatScore(markerScore)}`}
                data-testid="probe-slider"
              />
              <div className="slider-scale" aria-hidden="true">
                <span>lowest</span>
                <span>
                  quantile <strong data-testid="probe-q">{formatPercent(q, 0)}</strong> · score <strong>{formatScore(markerScore)}</strong>
                </span>
                <span>highest</span>
              </div>
            </div>
          </div>
          {legendItems.length > 0 && (
            <CategoricalLegend items={legendItems} title="Label" onPick={(l) => update({ filter: isolateLabel(state.filter, l) }, { replace: true })} isOff={(l) => !labelShown(state.filter, l)} />
          )}
        </div>
        <p className="hint" data-png-skip="1">Drag the slider, or focus it and use ← → (1 %), PageUp / PageDown (10 %), Home / End.</p>
      </section>

      <div className="probe-strips-head">
        <div className="toolbar-spacer" />
        <PngButton target={stripsRef} name={`${run.id}-${layer.name}-${name}-q${Math.round(q * 100)}`} title="Download the three strips of samples as PNG" />
      </div>
      <div className="probe-strips" ref={stripsRef}>
        <Strip title={<span className="end-tag end-tag-low">▼ lowest</span>} samples={extremes?.low ?? null} error={basis.error ?? gallery.error} n={n} />
        <Strip
          title={<>Near {formatPercent(q, 0)}</>}
          samples={near?.samples ?? null}
          error={quantile.error}
          n={n}
          loading={quantile.loading}
          near
          q={near?.q}
        />
        <Strip
          title={<span className="end-tag end-tag-high">▲ highest</span>}
          samples={extremes ? extremes.high.slice().reverse() : null}
          error={basis.error ?? gallery.error}
          n={n}
        />
      </div>
    </div>
  );
}

function scoreRange(samples: { score: number }[]): string {
  if (!samples.length) return '';
  return `scores ${formatScore(samples[0].score)} … ${formatScore(samples[samples.length - 1].score)}`;
}

/** A strip of samples in ascending score: its title, score range and label counts. */
function Strip(props: {
  title: ReactNode;
  samples: SampleRef[] | null;
  error: Error | null;
  n: number;
  loading?: boolean;
  near?: boolean;
  q?: number;
}) {
  const { samples, error } = props;
  const counts = samples ? labelCounts(samples.map((s) => s.label)) : [];
  return (
    <section className={`card strip${props.near ? ' strip-near' : ''}`} aria-busy={props.loading}>
      <div className="card-head">
        <h3>{props.title}</h3>
        {props.loading && <Spinner label="Loading samples" />}
      </div>
      <div className="strip-meta muted small">
        <span>{samples ? scoreRange(samples) : '\u00a0'}</span>
        <span className="strip-counts">{counts.slice(0, 3).map((c) => `${c.count}× ${c.label}`).join(' · ')}</span>
      </div>
      <div
        className={`near-body${props.loading && samples ? ' stale' : ''}`}
        data-testid={props.near ? 'probe-samples' : undefined}
        data-q={props.near ? props.q : undefined}
      >
        {error ? <ErrorState error={error} compact /> : samples ? <ThumbGrid samples={samples} /> : <StripSkeleton n={props.n} />}
      </div>
    </section>
  );
}

function StripSkeleton({ n }: { n: number }) {
  return (
    <div className="thumb-grid is-image size-md" aria-hidden="true">
      {Array.from({ length: n }, (_, i) => (
        <Skeleton key={i} className="sk-thumb" />
      ))}
    </div>
  );
}
