import { getAssociations, getGallery, type GalleryComponent, type LayerInfo, type SampleRef } from '../api';
import { EmptyState, ErrorState, Skeleton } from '../components/common';
import { ThumbGrid } from '../components/SampleThumb';
import { useApp } from '../context';
import { useAsync } from '../hooks';
import { componentMeaning, type ComponentMeaning } from '../lib/analysis';
import { formatPercent, formatScore, pcName } from '../lib/format';
import { dominantLabel } from '../lib/labels';
import { cumulative, galleryRows, labelColor } from '../lib/runInfo';
import { N_MAX, N_MIN } from '../lib/urlState';

export function NControl() {
  const { state, update } = useApp();
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
  const { run, state } = useApp();
  const rows = galleryRows(run, state.rows, state.layer);
  return (
    <div className="view gallery-view" data-testid="gallery">
      <div className="toolbar">
        <div className="toolbar-title">
          <h2>Component gallery</h2>
          <span className="muted">Samples at both ends of each principal component. Click a header to probe it.</span>
        </div>
        <div className="toolbar-spacer" />
        <NControl />
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
  const { run, state } = useApp();
  const n = state.n;
  const gallery = useAsync((signal) => getGallery(run.id, layer.name, n, signal), [run.id, layer.name, n], true);
  // what each component reads as (the label column, or the colour-by column); optional extra
  const assoc = useAsync((signal) => getAssociations(run.id, layer.name, signal), [run.id, layer.name]);
  const cum = cumulative(layer.explained_variance_ratio);
  const isText = run.rendering_kind === 'text/plain';
  return (
    <section className={`gallery-row${multi ? ' multi' : ''}`} data-testid="gallery-row" data-layer={layer.name} aria-label={`Layer ${layer.name}`}>
      <header className="gallery-row-head">
        <h3 className="mono">{layer.name}</h3>
        <span className="muted">
          D = {layer.dim} · {layer.n_components} components explain {formatPercent(cum[cum.length - 1] ?? NaN)}
        </span>
        {gallery.loading && gallery.data && <span className="muted small">updating…</span>}
      </header>
      {gallery.error ? (
        <ErrorState error={gallery.error} title={`Could not load the gallery of ${layer.name}`} onRetry={gallery.retry} />
      ) : (
        <div className="gallery-scroller">
          <div className={`gallery-columns${isText ? ' is-text' : ''}`}>
            {gallery.data
              ? gallery.data.components.map((c) => (
                  <GalleryColumn key={c.index} layer={layer.name} component={c} n={n} meaning={componentMeaning(assoc.data?.columns, c.index, state.color)} />
                ))
              : Array.from({ length: layer.n_components }, (_, i) => <ColumnSkeleton key={i} n={n} isText={isText} />)}
          </div>
        </div>
      )}
    </section>
  );
}

function EndSummary({ end, samples }: { end: 'high' | 'low'; samples: SampleRef[] }) {
  const { labels } = useApp();
  const dom = dominantLabel(samples.map((s) => (s.label === null ? null : String(s.label))));
  const scores = samples.map((s) => s.score);
  const range = scores.length ? `scores ${formatScore(scores[0])} … ${formatScore(scores[scores.length - 1])} (most extreme first)` : '';
  return (
    <div className={`end-summary end-${end}`}>
      <span className={`end-tag end-tag-${end}`}>{end === 'high' ? '▲ high' : '▼ low'}</span>
      {dom && labels.length > 0 && (
        <span className="end-dominant" title={`${dom.count} of ${dom.total} samples at this end are ${dom.label}`}>
          <span className="swatch" style={{ background: labelColor(labels, dom.label) }} aria-hidden="true" />
          {dom.text}
        </span>
      )}
      <span className="end-range" title={range}>
        {scores.length ? formatScore(scores[0]) : ''}
      </span>
    </div>
  );
}

function GalleryColumn({ layer, component, meaning }: { layer: string; component: GalleryComponent; n: number; meaning: ComponentMeaning | null }) {
  const { update } = useApp();
  const title = `${pcName(component.index)} · ${formatPercent(component.explained_variance_ratio)} of variance`;
  return (
    <article className="gallery-column" data-testid="gallery-column" data-component={component.index}>
      <button
        type="button"
        className="column-head"
        data-testid="component-header"
        onClick={() => update({ layer, pc: component.index, tab: 'probe', q: 0.5 })}
        title={`Probe ${pcName(component.index)} of ${layer}`}
      >
        <span className="column-pc">{pcName(component.index)}</span>
        <span className="column-var">{formatPercent(component.explained_variance_ratio)} of variance</span>
        <span className="visually-hidden">{title}</span>
      </button>
      {meaning && (
        <div className="column-meaning" data-testid="component-summary" title={`${meaning.summary} (${meaning.column}: ${meaning.stat})`}>
          <span className="column-meaning-text">{meaning.summary}</span>
          <span className="column-meaning-stat">{meaning.stat}</span>
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
