import { useState } from 'react';
import { renderUrl, type RunInfo, type SampleRef } from '../api';
import { useApp } from '../context';
import { useSampleText } from '../hooks';
import { formatScore } from '../lib/format';
import { labelColor } from '../lib/runInfo';

/** A sample of any run (not only the current one); opens it in the sample view. */
export function RunThumb({ run, sample, labels }: { run: RunInfo; sample: SampleRef; labels: string[] }) {
  const { run: current, update, openSample } = useApp();
  const [failed, setFailed] = useState(false);
  const isText = run.rendering_kind === 'text/plain';
  const text = useSampleText(run.id, sample.id, isText);
  const label = sample.label === null ? null : String(sample.label);
  const title = `${run.name} · sample ${sample.id}${label ? ` · ${label}` : ''} · score ${formatScore(sample.score)}`;
  const open = () => (run.id === current.id ? openSample(sample.id) : update({ run: run.id, sample: sample.id, basis: 'pca', dirA: null, dirB: null }));
  return (
    <button type="button" className={`thumb ${isText ? 'thumb-text pair-text-thumb' : 'thumb-image thumb-sm'}`} onClick={open} title={title} data-testid="pair-thumb" data-sample-id={sample.id}>
      {isText ? (
        <span className="thumb-text-title">{text ?? '…'}</span>
      ) : run.rendering_kind === 'image/png' && !failed ? (
        <img src={renderUrl(run.id, sample.id)} alt={title} loading="lazy" decoding="async" onError={() => setFailed(true)} />
      ) : (
        <span className="thumb-placeholder">#{sample.id}</span>
      )}
      {label && <span className="thumb-dot" style={{ background: labelColor(labels, label) }} aria-hidden="true" />}
    </button>
  );
}
