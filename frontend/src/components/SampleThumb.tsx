import { renderUrl, type SampleRef } from '../api';
import { useApp, useAppSlices } from '../context';
import { useRendering } from '../hooks';
import { formatScore } from '../lib/format';
import { labelColor } from '../lib/runInfo';
import { AudioPlay } from './AudioPlay';
import { TokenThumb } from './TokenThumb';

interface Props {
  id: number;
  label?: string | null;
  score?: number;
  /** Show the label's colour as a stripe (the gallery) */
  showLabel?: boolean;
  /** The samples shown with this one, in order (the lightbox steps through them). */
  list?: readonly number[];
  size?: 'sm' | 'md';
}

/** Characters of a text shown on hover (the lightbox shows all of it). */
const HOVER_CHARS = 600;

function titleOf(id: number, label?: string | null, score?: number, text?: string | null) {
  const parts = [`Sample ${id}`];
  if (label) parts.push(label);
  if (score !== undefined) parts.push(`score ${formatScore(score)}`);
  const head = parts.join(' · ');
  if (!text) return head;
  return `${head}\n\n${text.length > HOVER_CHARS ? `${text.slice(0, HOVER_CHARS)}…` : text}`;
}

/** One sample as a button: thumbnail or text snippet; opens the sample view. */
export function SampleThumb({ id, label, score, showLabel = true, size = 'md', list }: Props) {
  const { run, labels, openSample, state } = useAppSlices('app');
  const open = state.sample === id ? ' is-open' : '';
  const kind = run.rendering_kind;
  // texts and thumbnails both come in batches (one request per render pass, not one per sample)
  // (an id past the run's end is a stale sample of the previous run for one render: not asked)
  // an audio sample's picture is its spectrogram (its clip plays from the play button)
  const picture = kind === 'image/png' || kind === 'audio/wav';
  const rendering = useRendering(run.id, id, (kind === 'text/plain' || picture) && id < run.n_samples);
  const text = kind === 'text/plain' && rendering !== undefined ? rendering ?? '(text unavailable)' : null;
  const color = labelColor(labels, label ?? null);
  const title = titleOf(id, label, score, text);

  if (run.per_token) return <TokenThumb id={id} label={label} score={score} showLabel={showLabel} />;
  if (kind === 'text/plain') {
    const [first, ...rest] = (text ?? '').split('\n');
    return (
      <button type="button" className={`thumb thumb-text${open}`} onClick={() => openSample(id, list)} title={title} data-testid="sample-thumb" data-sample-id={id}>
        {showLabel && label && <span className="thumb-stripe" style={{ background: color }} aria-hidden="true" />}
        {text === null ? (
          <span className="thumb-text-loading" aria-label="loading text">
            <span className="skeleton line" />
            <span className="skeleton line short" />
          </span>
        ) : (
          <>
            <span className="thumb-text-title">{first || '(empty)'}</span>
            {rest.length > 0 && <span className="thumb-text-body">{rest.join(' ')}</span>}
          </>
        )}
        <span className="thumb-text-meta">
          {label && <span className="thumb-text-label">{label}</span>}
          {score !== undefined && <span className="thumb-text-score">{formatScore(score)}</span>}
        </span>
      </button>
    );
  }

  const thumb = (
    <button type="button" className={`thumb thumb-image thumb-${size}${open}`} onClick={() => openSample(id, list)} title={title} data-testid="sample-thumb" data-sample-id={id}>
      {picture && rendering === undefined ? (
        <span className="thumb-placeholder is-loading" aria-label="loading image" />
      ) : picture && rendering ? (
        <img src={rendering} alt={title} decoding="async" />
      ) : (
        <span className="thumb-placeholder">#{id}</span>
      )}
      {showLabel && label && <span className="thumb-dot" style={{ background: color }} aria-hidden="true" />}
    </button>
  );
  if (kind !== 'audio/wav') return thumb;
  return (
    <span className="thumb-audio" data-testid="audio-thumb">
      {thumb}
      <AudioPlay src={renderUrl(run.id, id)} label={`sample ${id}`} />
    </span>
  );
}

export function ThumbGrid({ samples, reverse = false, size = 'md', testId }: { samples: SampleRef[]; reverse?: boolean; size?: 'sm' | 'md'; testId?: string }) {
  const { run } = useApp();
  const list = reverse ? samples.slice().reverse() : samples;
  const ids = list.map((s) => s.id);
  return (
    <div className={`thumb-grid ${run.rendering_kind === 'text/plain' ? 'is-text' : `is-image size-${size}`}`} data-testid={testId}>
      {list.map((s) => (
        <SampleThumb key={s.id} id={s.id} label={s.label === null ? null : String(s.label)} score={s.score} size={size} list={ids} />
      ))}
    </div>
  );
}
