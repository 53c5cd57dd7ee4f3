import { useRef } from 'react';
import { type Gallery, type GalleryComponent, type LayerInfo, type SampleRef } from '../api';
import { BasisBar } from '../components/BasisBar';
import { EmptyState, ErrorState, Skeleton, Spinner } from '../components/common';
import { ExportMenu } from '../components/ExportMenu';
import { PngButton } from '../components/PngButton';
import { ThumbGrid } from '../components/SampleThumb';
import { TokenMakeupNote, TokenWindowControl } from '../components/TokenThumb';
import { useApp, useAppSlices } from '../context';
import { useAssociations, useBasis, useFilterParam, useGallery } from '../hooks';
import { componentMeaning, strongestMeaning, type ComponentMeaning } from '../lib/analysis';
import { formatPercent, formatScore } from '../lib/format';
import { formatSeparation } from '../lib/direction';
import { dominantLabel } from '../lib/labels';
import { cumulative, galleryRows, labelColor } from '../lib/runInfo';
import { N_MAX, N_MIN } from '../lib/urlState';

export function NControl() {
  const { state, update } = useAppSlices('gallery');
  return (
    <label className="n-control">
      <span>Samples per end</span>
      <input
        type="range"
        min={N_MIN}
        max={N_MAX}
        step={1}
        value={state.n}
        onChange={(e) => update({ n: Number(e.target.value) }, { replace: true })}
        aria-label="Samples per end"
        data-testid="n-input"
      />
      <output className="n-value">{state.n}</output>
    </label>
  );
}

/** Component gallery: per layer a row, per component a column with its high and low extremes. */
export function GalleryView() {
  const { run, state, layer } = useAppSlices('app', 'basis');
  const rows = galleryRows(run, state.rows, state.layer);
  const focused = useBasis(run, layer.name, state.basis, state.dirA, state.dirB);
  const what = state.basis === 'ica' ? 'independent component' : state.basis === 'dir' ? 'direction' : 'principal component';
  return (
    <div className="view gallery-view" data-testid="gallery">
      <div className="toolbar">
        <div className="toolbar-title">
          <h2>Component gallery</h2>
          <span className="muted">Samples at both ends of each {what}. Click a header to probe it.</span>
        </div>
        <div className="toolbar-spacer" />
        <BasisBar basis={focused} />
        <NControl />
        {run.per_token && <TokenWindowControl />}
        <ExportMenu basis={focused.key} basisName={focused.choice === 'ica' ? 'ICA' : focused.direction?.name ?? 'direction'} />
      </div>
      {rows.length === 0 && <EmptyState title="This run has no layers" />}
      {rows.map((name) => {
        const layer = run.layers.find((l) => l.name === name)!;
        return <GalleryRow key={name} layer={layer} multi={rows.length > 1} />;
      })}
    </div>
  );
}

function GalleryRow({ layer, multi }: { layer: LayerInfo; multi: boolean }) {
  const { run, state } = useAppSlices('gallery', 'basis', 'scatter');
  const n = state.n;
  const basis = useBasis(run, layer.name, state.basis, state.dirA, state.dirB);
  const key = basis.key;
  const filter = useFilterParam();
  const gallery = useGallery(run.id, layer.name, n, key, true, filter);
  // what each PC reads as (the label column, or the colour-by column); optional extra
  const assoc = useAssociations(run.id, layer.name, key === 'pca');
  const cum = cumulative(layer.explained_variance_ratio);
  const isText = run.rendering_kind === 'text/plain';
  const rowRef = useRef<HTMLElement>(null);
  const data = gallery.data && gallery.data.basis === key ? gallery.data : gallery.data && gallery.loading ? gallery.data : null;
  const error = basis.error ?? gallery.error;
  const skeletons = state.basis === 'dir' ? 1 : layer.n_components;
  return (
    <section ref={rowRef} className={`gallery-row${multi ? ' multi' : ''}`} data-testid="gallery-row" data-layer={layer.name} data-basis={data?.basis ?? ''} aria-label={`Layer ${layer.name}`}>
      <header className="gallery-row-head">
        <h3 className="mono">{layer.name}</h3>
        <span className="muted">{rowSubtitle(layer, data, cum)}</span>
        {(gallery.loading || basis.loading) && data && <span className="muted small">updating…</span>}
        {!data && !error && state.basis === 'ica' && (
          <span className="muted small">
            <Spinner label="Fitting ICA" /> fitting FastICA on the principal components…
          </span>
        )}
        <div className="toolbar-spacer" />
        <PngButton target={rowRef} name={`${run.id}-${layer.name}-${data?.basis.replace(':', '-') ?? 'gallery'}`} title={`Download the gallery of ${layer.name} as PNG`} />
      </header>
      {error ? (
        basis.choice === 'dir' && !basis.groupA ? (
          <EmptyState title="Define a direction" testId="direction-needed">
            Pick two labels above (or, in the Scatter view, lasso two groups and use them as A and B): the direction from the mean of A to the mean of B is then probed like a component.
          </EmptyState>
        ) : (
          <ErrorState error={error} title={`Could not load the gallery of ${layer.name}`} onRetry={basis.error ? basis.retry : gallery.retry} />
        )
      ) : filter && data && data.components.every((c) => c.low.length === 0) ? (
        <EmptyState title="No sample passes the filter" testId="filter-empty">
          Loosen or clear the filter above to see the samples at the ends of each component.
        </EmptyState>
      ) : (
        <div className="gallery-scroller">
          <div className={`gallery-columns${isText ? ' is-text' : ''}`}>
            {data
              ? data.components.map((c) => (
                  <GalleryColumn key={c.index} layer={layer.name} component={c} separation={data.separation} n={n} meaning={key === 'pca' ? componentMeaning(assoc.data?.columns, c.index, state.color) : null} strongest={key === 'pca' ? strongestMeaning(assoc.data?.columns, c.index) : null} />
                ))
              : Array.from({ length: skeletons }, (_, i) => <ColumnSkeleton key={i} n={n} isText={isText} />)}
          </div>
        </div>
      )}
    </section>
  );
}

function rowSubtitle(layer: LayerInfo, data: Gallery | null, cum: number[]): string {
  if (data?.kind === 'ica') return `D = ${layer.dim} · ${data.components.length} independent components, most non-Gaussian first`;
  if (data?.kind === 'direction') return `D = ${layer.dim} · one direction, from the mean of A to the mean of B`;
  return `D = ${layer.dim} · ${layer.n_components} components explain ${formatPercent(cum[cum.length - 1] ?? NaN)}`;
}

/** What a component's header says beside its name: variance share, kurtosis or separation. */
export function componentStat(c: GalleryComponent, separation?: number | null): string {
  if (c.explained_variance_ratio !== null && c.explained_variance_ratio !== undefined) return `${formatPercent(c.explained_variance_ratio)} of variance`;
  if (c.kurtosis !== null && c.kurtosis !== undefined) return `kurtosis ${c.kurtosis.toFixed(1)}`;
  if (separation !== undefined) return formatSeparation(separation); // a direction: null reads "–"
  return '';
}

function EndSummary({ end, samples }: { end: 'high' | 'low'; samples: SampleRef[] }) {
  const { labels, run } = useApp();
  const dom = dominantLabel(samples.map((s) => (s.label === null ? null : String(s.label))));
  const scores = samples.map((s) => s.score);
  const range = scores.length ? `scores ${formatScore(scores[0])} … ${formatScore(scores[scores.length - 1])} (most extreme first)` : '';
  return (
    <div className={`end-summary end-${end}`}>
      <span className={`end-tag end-tag-${end}`}>{end === 'high' ? '▲ high' : '▼ low'}</span>
      {dom && labels.length > 0 && (
        <span className="end-dominant" title={`${dom.count} of the ${dom.total} samples shown at this end are ${dom.label}`}>
          <span className="swatch" style={{ background: labelColor(labels, dom.label) }} aria-hidden="true" />
          <span className="end-dominant-text">{dom.text}</span>
        </span>
      )}
      {run.per_token && <TokenMakeupNote ids={samples.map((s) => s.id)} />}
      <span className="end-range" title={range}>
        {scores.length ? formatScore(scores[0]) : ''}
      </span>
    </div>
  );
}

function GalleryColumn({ layer, component, separation, meaning, strongest }: { layer: string; component: GalleryComponent; separation?: number | null; n: number; meaning: ComponentMeaning | null; strongest: ComponentMeaning | null }) {
  const { update } = useApp();
  const stat = componentStat(component, separation);
  const title = `${component.name} · ${stat}`;
  return (
    <article className="gallery-column" data-testid="gallery-column" data-component={component.index}>
      <button
        type="button"
        className="column-head"
        data-testid="component-header"
        onClick={() => update({ layer, pc: component.index, tab: 'probe', q: 0.5 })}
        title={`Probe ${component.name} of ${layer}`}
      >
        <span className="column-pc">{component.name}</span>
        <span className="column-var">{stat || '\u00a0'}</span>
        <span className="visually-hidden">{title}</span>
      </button>
      {meaning && (
        <div
          className="column-meaning"
          data-testid="component-summary"
          title={
            meaning.statistic === 'eta2'
              ? `${meaning.summary} (${meaning.column}: ${meaning.stat}). From each category's mean score over all samples; the HIGH and LOW tags count the samples shown, which can differ.`
              : `${meaning.summary} (${meaning.column}: ${meaning.stat})`
          }
        >
          <span className="column-meaning-text">
            {meaning.statistic === 'eta2' && meaning.summary.startsWith('high:') && <span className="muted">by mean · </span>}
            {meaning.summary}
          </span>
          <span className="column-meaning-stat">{meaning.stat}</span>
        </div>
      )}
      {/* a blank line where the shown column is the strongest, so the thumbnails line up */}
      {strongest && strongest.column === meaning?.column && <div className="column-strongest" aria-hidden="true">{'\u00a0'}</div>}
      {strongest && strongest.column !== meaning?.column && (
        <div className="column-strongest" data-testid="component-strongest" title={`Of all columns, ${strongest.column} goes most strongly with ${component.name}: ${strongest.summary}`}>
          strongest: <span className="column-strongest-name">{strongest.column}</span> <span className="column-meaning-stat">{strongest.stat}</span>
        </div>
      )}
      <EndSummary end="high" samples={component.high} />
      <ThumbGrid samples={component.high} testId="gallery-high" />
      <div className="axis-divider" aria-hidden="true">
        <span />
      </div>
      <ThumbGrid samples={component.low} reverse testId="gallery-low" />
      <EndSummary end="low" samples={component.low} />
    </article>
  );
}

function ColumnSkeleton({ n, isText }: { n: number; isText: boolean }) {
  return (
    <div className="gallery-column skeleton-column" aria-hidden="true">
      <Skeleton height={34} />
      <Skeleton height={14} width="70%" />
      <div className={`thumb-grid ${isText ? 'is-text' : 'is-image size-md'}`}>
        {Array.from({ length: n }, (_, i) => (
          <Skeleton key={i} className={isText ? 'sk-text' : 'sk-thumb'} />
        ))}
      </div>
      <div className="axis-divider"><span /></div>
      <div className={`thumb-grid ${isText ? 'is-text' : 'is-image size-md'}`}>
        {Array.from({ length: n }, (_, i) => (
          <Skeleton key={i} className={isText ? 'sk-text' : 'sk-thumb'} />
        ))}
      </div>
    </div>
  );
}
