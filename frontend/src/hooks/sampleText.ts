/** Text renderings of samples, fetched in batches (one call per render pass and run). */
import { useEffect, useRef, useState } from 'react';
import { getRenderings } from '../api';

const textCache = new Map<string, string>();
const textWaiters = new Map<string, Set<() => void>>();
const queued = new Map<string, Set<number>>();
const inflight = new Set<string>();
let flushTimer: ReturnType<typeof setTimeout> | null = null;

function textKey(run: string, id: number) {
  return `${run}\u0000${id}`;
}

function flushTexts() {
  flushTimer = null;
  for (const [run, idSet] of queued) {
    queued.delete(run);
    const ids = Array.from(idSet);
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      for (const id of chunk) inflight.add(textKey(run, id));
      getRenderings(run, chunk).then(
        (r) => {
          for (const item of r.items) {
            const key = textKey(run, item.id);
            inflight.delete(key);
            textCache.set(key, 'text' in item ? item.text : '');
            textWaiters.get(key)?.forEach((w) => w());
            textWaiters.delete(key);
          }
        },
        () => {
          for (const id of chunk) {
            const key = textKey(run, id);
            inflight.delete(key);
            textCache.set(key, '(text unavailable)');
            textWaiters.get(key)?.forEach((w) => w());
            textWaiters.delete(key);
          }
        },
      );
    }
  }
}

/** The stored text of a sample; requests from one render pass are batched into one call. */
export function useSampleText(run: string, id: number, enabled: boolean): string | null {
  const key = textKey(run, id);
  const [, force] = useState(0);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    if (!enabled || textCache.has(key)) return;
    const wake = () => mounted.current && force((x) => x + 1);
    if (!textWaiters.has(key)) textWaiters.set(key, new Set());
    textWaiters.get(key)!.add(wake);
    if (!inflight.has(key)) {
      if (!queued.has(run)) queued.set(run, new Set());
      queued.get(run)!.add(id);
      if (flushTimer === null) flushTimer = setTimeout(flushTexts, 0);
    }
    return () => {
      mounted.current = false;
      textWaiters.get(key)?.delete(wake);
    };
  }, [key, run, id, enabled]);
  return enabled ? textCache.get(key) ?? null : null;
}
