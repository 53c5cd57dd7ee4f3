/**
 * Findings (`GET /api/runs/{run}/insights`) as the UI shows them: a tag per kind, and the state
 * patch that opens the view a finding's `target` names (URL query parameters, as links hold them).
 */
import type { Insight } from '../api';
import { PARAMS, decodeState, type ViewState } from './urlState';

export const KIND_NAMES: Record<string, string> = {
  input_statistic: 'Input statistic',
  class_emergence: 'Classes',
  errors: 'Errors',
  dataset_shift: 'Data-set shift',
  model_comparison: 'Models',
};

export function kindName(kind: string): string {
  return KIND_NAMES[kind] ?? kind.replace(/_/g, ' ');
}

/** The query string of a finding's target (a link to the view that shows it). */
export function targetSearch(target: Insight['target']): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(target)) p.set(k, String(v));
  return `?${p.toString()}`;
}

/** The fields of the view state that `target` sets (only those: the rest of the view stays). */
export function targetPatch(target: Insight['target']): Partial<ViewState> {
  const decoded = decodeState(targetSearch(target));
  const patch: Record<string, unknown> = {};
  for (const param of PARAMS) if (param.key in target) patch[param.field as string] = decoded[param.field];
  return patch as Partial<ViewState>;
}

/** The label of a finding's link: what it opens. */
export function targetLabel(insight: Insight): string {
  const tab = insight.target.tab;
  if (tab === 'datasets') return 'Open in Data sets';
  if (tab === 'compare') return 'Open in Models';
  const pc = insight.component !== null ? ` PC ${insight.component + 1}` : '';
  return `Probe ${insight.layer ?? ''}${pc}`.trim();
}
