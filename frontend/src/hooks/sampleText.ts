/**
 * Renderings of samples (texts, and thumbnails as data URLs) fetched in batches: the renderings a
 * render pass asks for go out as one `/renderings` call per run (chunks of CHUNK ids), not one
 * request per thumbnail. A bounded cache keeps the most recent ones.
 */
import { useEffect, useState } from 'react';
import { getRenderings } from '../api';

/** Ids per batched call (the server takes up to 1000). */
const CHUNK = 250;
/** Renderings kept; the oldest go first. Images are small data URLs (a few kB each). */
const CACHE_MAX = 4000;

/** A rendering: the text or data URL, or null where it could not be had. */
type Entry = string | null;

const cache = new Map<string, Entry>();
const waiters = new Map<string, Set<(e: Entry) => void>>();
const queued = new Map<string, Set<number>>();
const inflight = new Set<string>();
let flushTimer: ReturnType<typeof setTimeout> | null = null;

function cacheKey(run: string, id: number) {
  return `${run}\u0000${id}`;
}

function settle(key: string, entry: Entry) {
  inflight.delete(key);
  cache.set(key, entry);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value as string);
  waiters.get(key)?.forEach((w) => w(entry));
  waiters.delete(key);
}

function flush() {
  flushTimer = null;
  for (const [run, idSet] of queued) {
    queued.delete(run);
    const ids = Array.from(idSet);
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      getRenderings(run, chunk).then(
        (r) => {
          const got = new Set<number>();
          for (const item of r.items) {
            got.add(item.id);
            settle(cacheKey(run, item.id), 'text' in item ? item.text : item.data_url);
          }
          for (const id of chunk) if (!got.has(id)) settle(cacheKey(run, id), null);
        },
        () => chunk.forEach((id) => settle(cacheKey(run, id), null)),
      );
    }
  }
}

/**
 * The rendering of sample `id` of `run`: undefined while loading, null where it failed, else the
 * text (text runs) or a data URL (image runs). Nothing is fetched unless `enabled`.
 */
export function useRendering(run: string, id: number, enabled: boolean): Entry | undefined {
  const key = cacheKey(run, id);
  const [got, setGot] = useState<{ key: string; entry: Entry } | null>(null);
  useEffect(() => {
    if (!enabled || cache.has(key)) return;
    let live = true;
    const wake = (entry: Entry) => live && setGot({ key, entry });
    if (!waiters.has(key)) waiters.set(key, new Set());
    waiters.get(key)!.add(wake);
    if (!inflight.has(key)) {
      inflight.add(key);
      if (!queued.has(run)) queued.set(run, new Set());
      queued.get(run)!.add(id);
      if (flushTimer === null) flushTimer = setTimeout(flush, 0);
    }
    return () => {
      live = false;
      waiters.get(key)?.delete(wake);
    };
  }, [key, run, id, enabled]);
  if (!enabled) return undefined;
  if (cache.has(key)) return cache.get(key);
  return got?.key === key ? got.entry : undefined;
}

/** The stored text of a sample (null while loading); batched with the render pass's others. */
export function useSampleText(run: string, id: number, enabled: boolean): string | null {
  const entry = useRendering(run, id, enabled);
  if (entry === undefined) return null;
  return entry ?? '(text unavailable)';
}
