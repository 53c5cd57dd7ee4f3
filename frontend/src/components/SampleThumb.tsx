import { useState } from 'react';
import { renderUrl, type SampleRef } from '../api';
import { useApp, useAppSlices } from '../context';
import { useSampleText } from '../hooks';
import { formatScore } from '../lib/format';
import { labelColor } from '../lib/runInfo';
import { TokenThumb } from './TokenThumb';

interface Props {
  id: number;
  label?: string | null;
  score?: number;
  /** Show the label's colour as a stripe (the gallery) */
  showLabel?: boolean;
  size?: 'sm' | 'md';
}

function titleOf(id: number, label?: string | null, score?: number) {
  const parts = [`Sample ${id}`];
  if (label) parts.push(label);
  if (score !== undefined) parts.push(`score ${formatScore(score)}`);
  return parts.join(' · ');
}

/** One sample as a button: thumbnail or text snippet; opens the sample view. */
export function SampleThumb({ id, label, score, showLabel = true, size = 'md' }: Props) {
  const { run, labels, openSample, state } = useAppSlices('app');
  const open = state.sample === id ? ' is-open' : '';
  const kind = run.rendering_kind;
  const text = useSampleText(run.id, id, kind === 'text/plain');
  const [failed, setFailed] = useState(false);
  const color = labelColor(labels, label ?? null);
  const title = titleOf(id, label, score);

  if (run.per_token) return <TokenThumb id={id} label={label} score={score} showLabel={showLabel} />;
  if (kind === 'text/plain') {
    const [first, ...rest] = (text ?? '').split('\n');
    return (
      <button type="button" className={`thumb thumb-text${open}`} onClick={() => openSample(id)} title={title} data-testid="sample-thumb" data-sample-id={id}>
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

  return (
    <button type="button" className={`thumb thumb-image thumb-${size}${open}`} onClick={() => openSample(id)} title={title} data-testid="sample-thumb" data-sample-id={id}>
      {kind === 'image/png' && !failed ? (
        <img src={renderUrl(run.id, id)} alt={title} loading="lazy" decoding="async" onError={() => setFailed(true)} />
      ) : (
        <span className="thumb-placeholder">#{id}</span>
      )}
      {showLabel && label && <span className="thumb-dot" style={{ background: color }} aria-hidden="true" />}
    </button>
  );
}

export function ThumbGrid({ samples, reverse = false, size = 'md', testId }: { samples: SampleRef[]; reverse?: boolean; size?: 'sm' | 'md'; testId?: string }) {
  const { run } = useApp();
  const list = reverse ? samples.slice().reverse() : samples;
  return (
    <div className={`thumb-grid ${run.rendering_kind === 'text/plain' ? 'is-text' : `is-image size-${size}`}`} data-testid={testId}>
      {list.map((s) => (
        <SampleThumb key={s.id} id={s.id} label={s.label === null ? null : String(s.label)} score={s.score} size={size} />
      ))}
    </div>
  );
}
