import { useEffect, useRef } from 'react';
import { renderUrl, spectrogramUrl, type RunInfo } from '../api';
import { useRendering } from '../hooks';

export interface LightboxProps {
  run: RunInfo;
  /** The samples to step through (e.g. one end of a gallery column), in order. */
  ids: readonly number[];
  index: number;
  onStep: (index: number) => void;
  onClose: () => void;
}

/**
 * One sample, large, over the page: the full text, the image scaled up, or an audio clip's
 * spectrogram with its player. ← and → step through
 * `ids` (Home and End jump to the ends), Esc closes. Keys are taken before the page's own.
 */
export function Lightbox({ run, ids, index, onStep, onClose }: LightboxProps) {
  const id = ids[index];
  const isText = run.rendering_kind === 'text/plain';
  const rendering = useRendering(run.id, id, run.rendering_kind !== null);
  const closeRef = useRef<HTMLButtonElement>(null);
  const last = ids.length - 1;

  useEffect(() => closeRef.current?.focus(), []);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const to = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: last }[e.key];
      if (e.key === 'Escape') onClose();
      else if (to !== undefined) onStep(Math.max(0, Math.min(last, to)));
      else return;
      // the lightbox has the keyboard: the sample view behind it must not close or step too
      e.preventDefault();
      e.stopPropagation();
    };
    window.addEventListener('keydown', onKey, { capture: true });
    return () => window.removeEventListener('keydown', onKey, { capture: true });
  }, [index, last, onStep, onClose]);

  let body;
  if (rendering === undefined) body = <div className="lightbox-loading skeleton" aria-label="loading" />;
  else if (rendering === null) body = <p className="muted">This sample's rendering could not be loaded.</p>;
  else if (isText) {
    const [title, ...rest] = rendering.split('\n');
    body = (
      <div className="lightbox-text" data-testid="lightbox-text">
        <strong>{title}</strong>
        {rest.length > 0 && <p>{rest.join('\n')}</p>}
      </div>
    );
  } else if (run.rendering_kind === 'audio/wav') {
    body = (
      <div className="lightbox-audio">
        <img className="lightbox-img" src={spectrogramUrl(run.id, id)} alt={`Spectrogram of sample ${id}`} data-testid="lightbox-img" />
        <audio controls src={renderUrl(run.id, id)} data-testid="lightbox-audio" />
      </div>
    );
  } else body = <img className="lightbox-img" src={rendering} alt={`Sample ${id}`} data-testid="lightbox-img" />;

  return (
    <div className="lightbox-backdrop" onClick={onClose} data-testid="lightbox">
      <div className="lightbox" role="dialog" aria-modal="true" aria-label={`Sample ${id}, ${index + 1} of ${ids.length}`} onClick={(e) => e.stopPropagation()}>
        <header className="lightbox-head">
          <span className="mono">#{id}</span>
          <span className="muted small" data-testid="lightbox-position">
            {index + 1} of {ids.length} · ← → to step, Esc to close
          </span>
          <div className="toolbar-spacer" />
          <button type="button" className="btn btn-icon" onClick={() => onStep(index - 1)} disabled={index <= 0} aria-label="Previous sample">
            ‹
          </button>
          <button type="button" className="btn btn-icon" onClick={() => onStep(index + 1)} disabled={index >= last} aria-label="Next sample">
            ›
          </button>
          <button type="button" ref={closeRef} className="btn btn-icon" onClick={onClose} aria-label="Close (Esc)" data-testid="lightbox-close">
            ✕
          </button>
        </header>
        <div className="lightbox-body">{body}</div>
      </div>
    </div>
  );
}
