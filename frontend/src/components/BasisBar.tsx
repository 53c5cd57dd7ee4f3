import { useState } from 'react';
import type { ResolvedBasis } from '../hooks';
import { useApp, useAppSlices } from '../context';
import { encodeGroup, formatSeparation, groupTitle, type GroupSpec } from '../lib/direction';
import { labelColor } from '../lib/runInfo';
import type { BasisChoice } from '../lib/urlState';
import { Spinner } from './common';

const TITLES: Record<BasisChoice, string> = {
  pca: 'Principal components: directions of largest variance, uncorrelated',
  ica: 'Independent components (FastICA on the principal components): directions of least Gaussian, often more "one thing each"',
  dir: 'A direction you define: from the mean of group A to the mean of group B',
};

/** PCA | ICA | Direction: what the gallery, probe (and scatter: PCA | ICA) read components along. */
export function BasisBar({ basis, allowDirection = true }: { basis: ResolvedBasis; allowDirection?: boolean }) {
  const { update } = useApp();
  const choices: BasisChoice[] = allowDirection ? ['pca', 'ica', 'dir'] : ['pca', 'ica'];
  const shown = !allowDirection && basis.choice === 'dir' ? 'pca' : basis.choice;
  return (
    <div className="basis-bar">
      <div className="segmented" role="radiogroup" aria-label="Components" data-testid="basis-toggle">
        {choices.map((c) => (
          <button
            key={c}
            type="button"
            role="radio"
            aria-checked={shown === c}
            className={shown === c ? 'on' : ''}
            onClick={() => update({ basis: c, pc: 0, q: 0.5, x: 0, y: 1 })}
            title={TITLES[c]}
            data-testid={`basis-${c}`}
          >
            {c === 'pca' ? 'PCA' : c === 'ica' ? 'ICA' : 'Direction'}
          </button>
        ))}
      </div>
      {allowDirection && basis.choice === 'dir' && <DirectionSummary basis={basis} />}
    </div>
  );
}

function DirectionSummary({ basis }: { basis: ResolvedBasis }) {
  const [editing, setEditing] = useState(false);
  const d = basis.direction;
  const open = editing || !basis.groupA || !basis.groupB;
  return (
    <div className="direction-summary" data-testid="direction-summary">
      {d && !open && (
        <span className="direction-name" title={`${d.n_a} samples in A, ${d.n_b} in B`}>
          <GroupChip tag="A" group={basis.groupA} /> → <GroupChip tag="B" group={basis.groupB} />
          <span className="stat-chip" title="(mean of B − mean of A) along the direction, in pooled standard deviations of the two groups" data-testid="direction-separation">
            {formatSeparation(d.separation)}
          </span>
        </span>
      )}
      {basis.loading && basis.groupA && basis.groupB && <Spinner label="Making the direction" />}
      {!open && (
        <button type="button" className="btn btn-small" onClick={() => setEditing(true)} data-testid="direction-edit">
          Change…
        </button>
      )}
      {open && <DirectionPicker groupA={basis.groupA} groupB={basis.groupB} onDone={() => setEditing(false)} />}
    </div>
  );
}

function GroupChip({ tag, group }: { tag: 'A' | 'B'; group: GroupSpec | null }) {
  const { labels } = useApp();
  return (
    <span className="group-chip">
      <span className={`run-tag run-tag-${tag.toLowerCase()}`}>{tag}</span>
      {group?.kind === 'label' && <span className="swatch" style={{ background: labelColor(labels, group.label) }} aria-hidden="true" />}
      {groupTitle(group)}
    </span>
  );
}

/** Two label dropdowns (a lasso selection already picked as a group shows as one more choice). */
export function DirectionPicker({ groupA, groupB, onDone }: { groupA: GroupSpec | null; groupB: GroupSpec | null; onDone?: () => void }) {
  const { labels, update, state } = useAppSlices('basis', 'probe');
  const initial = (g: GroupSpec | null, fallback: number) => (g ? encodeGroup(g) : labels[fallback] !== undefined ? `l:${labels[fallback]}` : '');
  const [a, setA] = useState(initial(groupA, 0));
  const [b, setB] = useState(initial(groupB, 1));
  const options = (current: GroupSpec | null) => (
    <>
      {current?.kind === 'ids' && <option value={encodeGroup(current)}>{groupTitle(current)}</option>}
      {labels.map((l) => (
        <option key={l} value={`l:${l}`}>
          {l}
        </option>
      ))}
    </>
  );
  if (!labels.length && !(groupA?.kind === 'ids' && groupB?.kind === 'ids')) {
    return (
      <span className="muted small" data-testid="direction-picker">
        This run has no labels: in the Scatter view, lasso two groups and use them as A and B.
      </span>
    );
  }
  return (
    <span className="direction-picker" data-testid="direction-picker">
      <label className="field">
        <span className="run-tag run-tag-a">A</span>
        <select value={a} onChange={(e) => setA(e.target.value)} aria-label="Group A" data-testid="direction-a">
          {options(groupA)}
        </select>
      </label>
      <span aria-hidden="true">→</span>
      <label className="field">
        <span className="run-tag run-tag-b">B</span>
        <select value={b} onChange={(e) => setB(e.target.value)} aria-label="Group B" data-testid="direction-b">
          {options(groupB)}
        </select>
      </label>
      <button
        type="button"
        className="btn btn-small btn-primary"
        disabled={!a || !b || a === b}
        title={a === b ? 'Pick two different groups' : 'The direction from the mean of A to the mean of B'}
        onClick={() => {
          update({ basis: 'dir', dirA: a, dirB: b, pc: 0, q: state.basis === 'dir' ? state.q : 0.5 });
          onDone?.();
        }}
        data-testid="direction-make"
      >
        Probe A → B
      </button>
    </span>
  );
}
