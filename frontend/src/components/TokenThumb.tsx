/** Per-token runs: a token inside a window of its text (the gallery's thumbnails), what an end
 * of a component is made of, and the window-size setting. */
import { useApp } from '../context';
import { useTokenContexts, useTokenWindow } from '../hooks';
import { formatScore } from '../lib/format';
import { labelColor } from '../lib/runInfo';
import { showTokens, tokenMakeup, TOKEN_WINDOW_MAX, TOKEN_WINDOW_MIN, type ShownToken } from '../lib/tokens';

/** Tokens as text, the one at `focus` highlighted; '…' where the text goes on. */
export function TokenWindow({ tokens, focus, moreBefore, moreAfter }: { tokens: string[]; focus: number; moreBefore: boolean; moreAfter: boolean }) {
  const shown: ShownToken[] = showTokens(tokens);
  return (
    <span className="tok-window">
      {moreBefore && <span className="tok-more">…</span>}
      {shown.map((t, i) => (
        <span key={i} className={i === focus ? 'tok tok-focus' : 'tok'} data-testid={i === focus ? 'token-focus' : undefined}>
          {t.spaceBefore ? ' ' : ''}
          <span className="tok-text">{t.text}</span>
        </span>
      ))}
      {moreAfter && <span className="tok-more">…</span>}
    </span>
  );
}

/** One token sample as a button: its window of text, the full text on hover; opens the sample. */
export function TokenThumb({ id, label, score, showLabel = true }: { id: number; label?: string | null; score?: number; showLabel?: boolean }) {
  const { run, labels, openSample, state } = useApp();
  const [window] = useTokenWindow();
  const [ctx] = useTokenContexts(run.id, [id], window);
  const open = state.sample === id ? ' is-open' : '';
  const color = labelColor(labels, label ?? null);
  const full = ctx && ctx !== 'failed' ? ctx.text : '';
  const title = [`Token ${id}`, label ?? '', score !== undefined ? `score ${formatScore(score)}` : '', full].filter(Boolean).join(' · ');
  return (
    <button type="button" className={`thumb thumb-text thumb-token${open}`} onClick={() => openSample(id)} title={title} data-testid="sample-thumb" data-sample-id={id}>
      {showLabel && label && <span className="thumb-stripe" style={{ background: color }} aria-hidden="true" />}
      {ctx === null ? (
        <span className="thumb-text-loading" aria-label="loading tokens">
          <span className="skeleton line" />
        </span>
      ) : ctx === 'failed' ? (
        <span className="muted">(tokens unavailable)</span>
      ) : (
        <TokenWindow tokens={ctx.tokens} focus={ctx.focus} moreBefore={ctx.more_before} moreAfter={ctx.more_after} />
      )}
      <span className="thumb-text-meta">
        {label && <span className="thumb-text-label">{label}</span>}
        {score !== undefined && <span className="thumb-text-score">{formatScore(score)}</span>}
      </span>
    </button>
  );
}

/** "9/16 are ' not'": the most common token among the samples at one end of a component. */
export function TokenMakeupNote({ ids }: { ids: number[] }) {
  const { run } = useApp();
  const [window] = useTokenWindow();
  const ctxs = useTokenContexts(run.id, ids, window);
  const focused = ctxs.map((c) => (c && c !== 'failed' ? c.tokens[c.focus] : null));
  if (focused.some((t) => t === null)) return null;
  const makeup = tokenMakeup(focused as string[]);
  if (!makeup) return null;
  return (
    <span className="end-tokens" data-testid="token-makeup" title={`${makeup.count} of the ${makeup.total} tokens at this end are ${makeup.token}`}>
      {makeup.text}
    </span>
  );
}

/** The window setting: tokens shown on each side of a token. */
export function TokenWindowControl() {
  const [window, setWindow] = useTokenWindow();
  return (
    <label className="n-control">
      <span>Context tokens</span>
      <input type="range" min={TOKEN_WINDOW_MIN} max={TOKEN_WINDOW_MAX} step={1} value={window} onChange={(e) => setWindow(Number(e.target.value))} aria-label="Context tokens each side" data-testid="token-window" />
      <output className="n-value">{window}</output>
    </label>
  );
}
