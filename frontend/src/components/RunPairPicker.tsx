import type { RunInfo } from '../api';

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
}

/** Two runs, A and B, each a select of every served run, with a swap button between them. */
export function RunPairPicker({ runs, a, b, onChange, testIdPrefix, ariaA, ariaB, swapTitle, swapAria, titleA, titleB }: RunPairPickerProps) {
  const options = runs.map((r) => (
    <option key={r.id} value={r.id}>
      {r.name}
    </option>
  ));
  return (
    <>
      <label className="field" title={titleA}>
        <span className="run-tag run-tag-a">A</span>
        <select value={a} onChange={(e) => onChange(e.target.value, e.target.value === b ? a : b, 'a')} data-testid={`${testIdPrefix}-run-a`} aria-label={ariaA}>
          {options}
        </select>
      </label>
      <button type="button" className="btn btn-icon" title={swapTitle} aria-label={swapAria} onClick={() => onChange(b, a, 'swap')}>
        ⇄
      </button>
      <label className="field" title={titleB}>
        <span className="run-tag run-tag-b">B</span>
        <select value={b} onChange={(e) => onChange(e.target.value === a ? b : a, e.target.value, 'b')} data-testid={`${testIdPrefix}-run-b`} aria-label={ariaB}>
          {options}
        </select>
      </label>
    </>
  );
}
