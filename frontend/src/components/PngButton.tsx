import { useState, type RefObject } from 'react';
import { downloadBlob, elementToPng, pngFileName } from '../lib/png';

/** A small download icon: saves what `target` shows now as a PNG. */
export function PngButton({ target, name, title = 'Download as PNG' }: { target: RefObject<Element | null>; name: string; title?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const save = async () => {
    const el = target.current;
    if (!el || busy) return;
    setBusy(true);
    setError(null);
    try {
      downloadBlob(await elementToPng(el), pngFileName(name));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <button
      type="button"
      className={`btn btn-icon png-button${error ? ' failed' : ''}`}
      onClick={save}
      disabled={busy}
      title={error ? `Could not make the PNG: ${error}` : title}
      aria-label={title}
      data-testid="png-download"
      data-png-skip="1"
    >
      <svg width="14" height="14" viewBox="0 0 16 16" aria-hidden="true">
        <path d="M8 1.5v8.2M4.6 6.6 8 10l3.4-3.4M2.5 11.5v2h11v-2" fill="none" stroke="currentColor" strokeWidth="1.6" strokeLinecap="round" strokeLinejoin="round" />
      </svg>
    </button>
  );
}
