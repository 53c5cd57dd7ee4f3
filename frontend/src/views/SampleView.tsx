import { useEffect, useRef, useState } from 'react';
import { renderUrl, spectrogramUrl } from '../api';
import { ErrorState, LabelChip, Skeleton } from '../components/common';
import { TokenStrip } from '../components/TokenStrip';
import { useApp } from '../context';
import { useSample, useSampleText } from '../hooks';
import { formatPercent, formatScore, pcName } from '../lib/format';
import { labelColor } from '../lib/runInfo';
import { SampleNeighbors } from './SampleNeighbors';

function formatValue(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : formatScore(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** One sample: large, with its label, metadata, and score and percentile on each component. */
export function SampleView({ id }: { id: number }) {
  const { run, layer, labels, update, openSample, openLightbox } = useApp();
  const [layerName, setLayerName] = useState(layer.name);
  useEffect(() => setLayerName(layer.name), [layer.name]);
  const detail = useSample(run.id, id, layerName);
  const text = useSampleText(run.id, id, run.rendering_kind === 'text/plain');
  const close = () => update({ sample: null });
  const closeRef = useRef<HTMLButtonElement>(null);
  const [imgFailed, setImgFailed] = useState(false);
  useEffect(() => setImgFailed(false), [id]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') update({ sample: null });
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [update]);
  useEffect(() => closeRef.current?.focus(), []);

  const d = detail.data;
  const lay = run.layers.find((l) => l.name === layerName) ?? layer;
  return (
    <aside className="sample-view" data-testid="sample-view" role="dialog" aria-label={`Sample ${id}`}>
      <header className="sample-head">
        <div>
          <div className="eyebrow">Sample</div>
          <h2 className="mono">#{id}</h2>
        </div>
        <div className="sample-nav">
          <button type="button" className="btn btn-icon" onClick={() => openSample(id - 1)} disabled={id <= 0} aria-label="Previous sample" title="Previous sample (by id)">
            ‹
          </button>
          <button type="button" className="btn btn-icon" onClick={() => openSample(id + 1)} disabled={id >= run.n_samples - 1} aria-label="Next sample" title="Next sample (by id)">
            ›
          </button>
          {run.rendering_kind !== null && (
            <button type="button" className="btn btn-icon" onClick={() => openLightbox(id)} aria-label="Enlarge" title="Enlarge (then ← → step through the samples it was shown with, Esc closes)" data-testid="sample-enlarge">
              ⤢
            </button>
          )}
          <button type="button" ref={closeRef} className="btn btn-icon" onClick={close} aria-label="Close sample view" data-testid="sample-close" title="Close (Esc)">
            ✕
          </button>
        </div>
      </header>
      <div className="sample-body">
        <div className="sample-render">
          {run.rendering_kind === 'image/png' && !imgFailed && (
            <img src={renderUrl(run.id, id)} alt={`Sample ${id}`} onError={() => setImgFailed(true)} onClick={() => openLightbox(id)} className="zoomable" title="Enlarge" />
          )}
          {run.rendering_kind === 'audio/wav' && (
            <div className="sample-audio">
              <img src={spectrogramUrl(run.id, id)} alt={`Spectrogram of sample ${id}`} onClick={() => openLightbox(id)} className="zoomable" title="Enlarge" data-testid="sample-spectrogram" />
              <audio controls src={renderUrl(run.id, id)} preload="none" data-testid="sample-audio" />
            </div>
          )}
          {run.rendering_kind === 'text/plain' && (
            <div className="sample-text">
              {text === null ? (
                '…'
              ) : (
                <>
                  <strong className="sample-text-title">{text.split('\n')[0]}</strong>
                  {text.split('\n').slice(1).join('\n')}
                </>
              )}
            </div>
          )}
          {(run.rendering_kind === null || imgFailed) && <div className="muted">This run stores no rendering of its samples.</div>}
        </div>
        {detail.error ? (
          <ErrorState error={detail.error} title={`Could not load sample ${id}`} onRetry={detail.retry} compact />
        ) : !d ? (
          <div className="stack">
            <Skeleton height={20} width="50%" />
            <Skeleton height={120} />
          </div>
        ) : (
          <>
            <dl className="kv">
              <div className="kv-row">
              <dt>Label</dt>
              <dd data-testid="sample-label">
                {/* the label's name only: its stored code ("2") is no news to the reader */}
                {d.label !== null ? <LabelChip label={d.label} color={labelColor(labels, d.label)} /> : <span className="muted">none</span>}
              </dd>
              </div>
              {Object.entries(d.metadata).map(([k, v]) => (
                <div key={k} className="kv-row">
                  <dt>{k}</dt>
                  <dd>{formatValue(v)}</dd>
                </div>
              ))}
            </dl>
            {run.per_token && typeof d.metadata.text_id === 'number' && (
              <TokenStrip key={`${layerName}-${d.metadata.text_id}`} layer={layerName} textId={d.metadata.text_id} sampleId={id} nComponents={lay.n_components} />
            )}
            <div className="sample-scores-head">
              <h3>Scores</h3>
              <select value={layerName} onChange={(e) => setLayerName(e.target.value)} aria-label="Layer of the scores">
                {run.layers.map((l) => (
                  <option key={l.name} value={l.name}>
                    {l.name}
                  </option>
                ))}
              </select>
            </div>
            <table className="score-table" data-testid="sample-scores">
              <thead>
                <tr>
                  <th scope="col">PC</th>
                  <th scope="col" className="num">
                    score
                  </th>
                  <th scope="col">percentile</th>
                </tr>
              </thead>
              <tbody>
                {(d.scores ?? []).map((s, i) => {
                  const p = d.percentiles?.[i] ?? NaN;
                  return (
                    <tr key={i}>
                      <th scope="row">
                        <button type="button" className="link-button" onClick={() => update({ layer: layerName, pc: i, tab: 'probe', q: Math.round(p) / 100 })} title={`Probe ${pcName(i)} at this sample's percentile`}>
                          {pcName(i)}
                        </button>
                        <span className="muted small"> {formatPercent(lay.explained_variance_ratio[i] ?? NaN)}</span>
                      </th>
                      <td className="num mono">{formatScore(s)}</td>
                      <td>
                        <span className="pct">
                          <span className="pct-track">
                            <span className="pct-mid" />
                            <span className="pct-mark" style={{ left: `${Math.min(100, Math.max(0, p))}%` }} />
                          </span>
                          <span className="pct-num">{Number.isFinite(p) ? `${p.toFixed(0)}` : '–'}</span>
                        </span>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            <SampleNeighbors id={id} layer={layerName} />
          </>
        )}
      </div>
    </aside>
  );
}
