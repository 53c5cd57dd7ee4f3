/** The basis the views probe along, resolved from the URL: "pca", "ica" or a direction's "dir:<id>". */
import { postDirection, type DirectionOut, type RunInfo } from '../api';
import { useAsync } from './async';
import { useColumnValues } from './resources';
import { decodeGroup, directionRequest, unknownLabel, type GroupSpec } from '../lib/direction';
import { LABEL_COLUMN, labelOrder } from '../lib/runInfo';
import type { BasisChoice } from '../lib/urlState';

export interface ResolvedBasis {
  choice: BasisChoice;
  /** The server's basis parameter; null while a direction is being made, or when it cannot be. */
  key: string | null;
  groupA: GroupSpec | null;
  groupB: GroupSpec | null;
  direction: DirectionOut | null;
  error: Error | null;
  loading: boolean;
  retry: () => void;
}

/**
 * PCA and ICA need nothing; a direction is made on the server from the two groups in the URL
 * (the same groups give the same direction, so reloading a link recreates it).
 */
export function useBasis(run: RunInfo, layer: string, choice: BasisChoice, dirA: string | null, dirB: string | null): ResolvedBasis {
  const groupA = decodeGroup(dirA);
  const groupB = decodeGroup(dirB);
  const isDir = choice === 'dir' && groupA !== null && groupB !== null;
  const needCodes = isDir && (groupA.kind === 'label') !== (groupB.kind === 'label');
  const codes = useColumnValues(run.id, needCodes ? LABEL_COLUMN : null);
  const labels = labelOrder(run);
  // a label the run lacks would become an empty id list ("ids_a is empty"): name it instead
  const unknown = isDir && needCodes ? unknownLabel(groupA, groupB, labels) : null;
  const body = isDir && unknown === null ? directionRequest(groupA, groupB, labels, codes.data) : null;
  const bodyKey = body ? JSON.stringify(body) : null;
  const made = useAsync(body ? (signal) => postDirection(run.id, layer, body, signal) : null, [run.id, layer, bodyKey]);
  if (choice !== 'dir') {
    return { choice, key: choice, groupA, groupB, direction: null, error: null, loading: false, retry: () => {} };
  }
  const missing = !groupA || !groupB
    ? new Error('No direction yet: pick two labels (or two lasso selections) for its ends.')
    : unknown !== null
      ? new Error(`Run “${run.name}” has no label “${unknown}”${labels.length ? `; its labels: ${labels.slice(0, 20).join(', ')}` : ''}. Pick another group.`)
      : null;
  return {
    choice,
    key: made.data ? made.data.basis : null,
    groupA,
    groupB,
    direction: made.data,
    error: missing ?? codes.error ?? made.error,
    loading: !missing && (codes.loading || made.loading || (!made.data && !made.error)),
    retry: made.error ? made.retry : codes.retry,
  };
}
