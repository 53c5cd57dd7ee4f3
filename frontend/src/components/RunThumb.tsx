import { type RunInfo, type SampleRef } from '../api';
import { useApp } from '../context';
import { useRendering } from '../hooks';
import { formatScore } from '../lib/format';
import { labelColor } from '../lib/runInfo';

/** A sample of any run (not only the current one); opens it in the sample view. */
export function RunThumb({ run, sample, labels }: { run: RunInfo; sample: SampleRef; labels: string[] }) {
  const { run: current, update, openSample } = useApp();
  const isText = run.rendering_kind === 'text/plain';
  const rendering = useRendering(run.id, sample.id, (isText || run.rendering_kind === 'image/png') && sample.id < run.n_samples);
  const text = isText && rendering !== undefined ? rendering ?? '(text unavailable)' : null;
  const label = sample.label === null ? null : String(sample.label);
  const title = `${run.name} · sample ${sample.id}${label ? ` · ${label}` : ''} · score ${formatScore(sample.score)}${text ? `\n\n${text.slice(0, 600)}` : ''}`;
  const open = () => (run.id === current.id ? openSample(sample.id) : update({ run: run.id, sample: sample.id, basis: 'pca', dirA: null, dirB: null }));
  return (
    <button type="button" className={`thumb ${isText ? 'thumb-text pair-text-thumb' : 'thumb-image thumb-sm'}`} onClick={open} title={title} data-testid="pair-thumb" data-sample-id={sample.id}>
      {isText ? (
        <span className="thumb-text-title">{text ?? '…'}</span>
      ) : run.rendering_kind === 'image/png' && rendering === undefined ? (
        <span className="thumb-placeholder is-loading" aria-label="loading image" />
      ) : run.rendering_kind === 'image/png' && rendering ? (
        <img src={rendering} alt={title} decoding="async" />
      ) : (
        <span className="thumb-placeholder">#{sample.id}</span>
      )}
      {label && <span className="thumb-dot" style={{ background: labelColor(labels, label) }} aria-hidden="true" />}
    </button>
  );
}
