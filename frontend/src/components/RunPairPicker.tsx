import type { RunInfo } from '../api';
import type { PairProblem } from '../lib/pairs';

/** Which control picked the pair: run A's select, run B's, or the swap button. */
export type PairChange = 'a' | 'b' | 'swap';

export interface RunPairPickerProps {
  runs: RunInfo[];
  a: string;
  b: string;
  /** The new pair; picking for one side the run of the other side swaps them. */
  onChange: (a: string, b: string, how: PairChange) => void;
  /** `compare` gives data-testid `compare-run-a`, `compare-run-b`. */
  testIdPrefix: string;
  ariaA: string;
  ariaB: string;
  swapTitle: string;
  swapAria: string;
  /** Tooltips of the two fields. */
  titleA?: string;
  titleB?: string;
  /** Why two runs cannot be paired (null: they can); such runs are offered disabled, with the reason. */
  problem?: PairProblem;
}

/**
 * Two runs, A and B, each a select of every served run, with a swap button between them. With
 * `problem`, B's runs that cannot go with A are disabled and say why; picking an A that cannot go
 * with B moves B to A's first partner; a run with no partner at all is disabled on both sides.
 */
export function RunPairPicker({ runs, a, b, onChange, testIdPrefix, ariaA, ariaB, swapTitle, swapAria, titleA, titleB, problem }: RunPairPickerProps) {
  const byId = new Map(runs.map((r) => [r.id, r]));
  const why = (x: string, y: string) => {
    const rx = byId.get(x);
    const ry = byId.get(y);
    return problem && rx && ry ? problem(rx, ry) : null;
  };
  const partner = (x: string) => runs.find((r) => r.id !== x && why(x, r.id) === null)?.id ?? null;
  const lonely = (x: string) => problem !== undefined && partner(x) === null;
  const optionsA = runs.map((r) => (
    <option key={r.id} value={r.id} disabled={r.id !== a && lonely(r.id)}>
      {r.id !== a && lonely(r.id) ? `${r.name} — nothing to compare it with` : r.name}
    </option>
  ));
  const optionsB = runs.map((r) => {
    const reason = r.id === a || r.id === b ? null : why(a, r.id);
    return (
      <option key={r.id} value={r.id} disabled={reason !== null} title={reason ?? undefined}>
        {reason ? `${r.name} — ${reason}` : r.name}
      </option>
    );
  });
  const pickA = (x: string) => {
    if (x === b) return onChange(x, a, 'a'); // the other side's run: a swap
    return onChange(x, why(x, b) === null ? b : partner(x) ?? b, 'a');
  };
  return (
    <>
      <label className="field" title={titleA}>
        <span className="run-tag run-tag-a">A</span>
        <select value={a} onChange={(e) => pickA(e.target.value)} data-testid={`${testIdPrefix}-run-a`} aria-label={ariaA}>
          {optionsA}
        </select>
      </label>
      <button type="button" className="btn btn-icon" title={swapTitle} aria-label={swapAria} onClick={() => onChange(b, a, 'swap')}>
        ⇄
      </button>
      <label className="field" title={titleB}>
        <span className="run-tag run-tag-b">B</span>
        <select value={b} onChange={(e) => onChange(e.target.value === a ? b : a, e.target.value, 'b')} data-testid={`${testIdPrefix}-run-b`} aria-label={ariaB}>
          {optionsB}
        </select>
      </label>
    </>
  );
}
