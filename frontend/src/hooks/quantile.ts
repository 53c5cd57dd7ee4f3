/** The samples nearest a quantile of a component, following a slider without flooding the server. */
import { useEffect, useMemo, useRef, useState } from 'react';
import { getQuantile, isAbortError, type QuantileSamples } from '../api';
import { roundQ, throttleLatest } from '../lib/quantile';
import type { UpdateState } from './urlState';

export interface QuantileRequest {
  run: string;
  layer: string;
  pc: number;
  q: number;
  n: number;
  /** The server's basis parameter; null: nothing to load yet. */
  basis: string | null;
  /** The server's filter parameter; undefined: every sample. */
  filter?: string;
}

export interface QuantileState {
  data: QuantileSamples | null;
  error: Error | null;
  loading: boolean;
}

/**
 * Requests are throttled (at most one per 80 ms, the latest wins); each aborts the one before and
 * an answer to an older request is dropped, so the strip never jumps back to an old position.
 * The shown samples are cleared when the component, layer, run or basis change (not when q does).
 */
export function useQuantileSamples({ run, layer, pc, q, n, basis, filter }: QuantileRequest): QuantileState {
  const [near, setNear] = useState<QuantileSamples | null>(null);
  const [nearError, setNearError] = useState<Error | null>(null);
  const [nearLoading, setNearLoading] = useState(false);
  const seq = useRef(0);
  const controller = useRef<AbortController | null>(null);
  const fetchNear = useMemo(
    () =>
      throttleLatest((args: QuantileRequest) => {
        if (!args.basis) return;
        const id = ++seq.current;
        controller.current?.abort();
        const c = new AbortController();
        controller.current = c;
        setNearLoading(true);
        getQuantile(args.run, args.layer, args.pc, args.q, args.n, c.signal, args.basis, args.filter).then(
          (res) => {
            if (id !== seq.current) return; // a newer request was sent: ignore this stale answer
            setNear(res);
            setNearError(null);
            setNearLoading(false);
          },
          (err: unknown) => {
            if (id !== seq.current || isAbortError(err)) return;
            setNearError(err as Error);
            setNearLoading(false);
          },
        );
      }, 80),
    [],
  );
  useEffect(() => {
    fetchNear({ q, pc, layer, run, n, basis, filter });
  }, [fetchNear, q, pc, layer, run, n, basis, filter]);
  useEffect(() => {
    setNear(null);
  }, [pc, layer, run, basis, filter]);
  useEffect(
    () => () => {
      fetchNear.cancel();
      controller.current?.abort();
    },
    [fetchNear],
  );
  return { data: near, error: nearError, loading: nearLoading };
}

/**
 * The probe slider's quantile: the returned value follows `move` at once, while the URL (`q`,
 * replaced, not pushed) follows at most every 250 ms; a `q` changed from outside (back/forward,
 * a pasted link) moves the slider.
 */
export function useSliderQuantile(urlQ: number, update: UpdateState): [number, (value: number) => void] {
  const [q, setQ] = useState(urlQ);
  const lastUrlQ = useRef(urlQ);
  useEffect(() => {
    // back/forward or a pasted link changed q
    if (urlQ !== lastUrlQ.current) {
      lastUrlQ.current = urlQ;
      setQ(urlQ);
    }
  }, [urlQ]);
  const writeUrl = useMemo(
    () =>
      throttleLatest((value: number) => {
        lastUrlQ.current = value;
        update({ q: value }, { replace: true });
      }, 250),
    [update],
  );
  useEffect(() => () => writeUrl.cancel(), [writeUrl]);

  const moveTo = (value: number) => {
    const v = roundQ(value);
    setQ(v);
    writeUrl(v);
  };
  return [q, moveTo];
}
