/** A component read along one text of a per-token run: every token coloured by its score. */
import { useState } from 'react';
import { ErrorState, Skeleton } from './common';
import { useApp } from '../context';
import { useTokenStrip } from '../hooks';
import { formatScore, pcName } from '../lib/format';
import { showTokens, stripColor, stripPosition } from '../lib/tokens';

/** The strip of text `textId` for a component of `layer` (a selector picks the component);
 * the token `sampleId` is outlined, and clicking a token opens it. */
export function TokenStrip({ layer, textId, sampleId, nComponents }: { layer: string; textId: number; sampleId: number; nComponents: number }) {
  const { run, state, openSample } = useApp();
  const [c, setC] = useState(Math.min(state.pc, nComponents - 1));
  const basis = state.basis === 'ica' ? 'ica' : 'pca';
  const strip = useTokenStrip(run.id, layer, c, textId, basis);
  const d = strip.data;
  const shown = d ? showTokens(d.tokens) : [];
  return (
    <section className="token-strip" data-testid="token-strip" aria-label={`Component along text ${textId}`}>
      <div className="sample-scores-head">
        <h3>Along the text</h3>
        <select value={c} onChange={(e) => setC(Number(e.target.value))} aria-label="Component of the strip" data-testid="token-strip-component">
          {Array.from({ length: nComponents }, (_, i) => (
            <option key={i} value={i}>
              {basis === 'ica' ? `IC ${i + 1}` : pcName(i)}
            </option>
          ))}
        </select>
      </div>
      {strip.error ? (
        <ErrorState error={strip.error} title="Could not load the strip" onRetry={strip.retry} compact />
      ) : !d ? (
        <Skeleton height={40} />
      ) : (
        <>
          <p className="token-strip-text">
            {shown.map((t, i) => {
              const score = d.scores[i];
              const id = d.sample_ids[i];
              return (
                <span key={id}>
                  {t.spaceBefore ? ' ' : ''}
                  <button
                    type="button"
                    className={`strip-token${id === sampleId ? ' is-current' : ''}`}
                    style={{ background: stripColor(stripPosition(score, d.low, d.high)) }}
                    title={`${JSON.stringify(d.tokens[i])} · score ${score === null ? '–' : formatScore(score)}`}
                    onClick={() => openSample(id)}
                    data-testid="strip-token"
                    data-score={score ?? ''}
                  >
                    {t.text}
                  </button>
                </span>
              );
            })}
          </p>
          <div className="token-strip-scale muted small">
            <span className="strip-swatch" style={{ background: stripColor(-1) }} /> {formatScore(d.low)} (1st pct)
            <span className="strip-swatch" style={{ background: stripColor(1) }} /> {formatScore(d.high)} (99th pct)
          </div>
        </>
      )}
    </section>
  );
}
