/**
 * Which pairs of runs the server can compare, and why not, in plain words: the Models view needs
 * two runs over the same samples in the same order (sample count and data hash agree); the Data
 * sets view needs one model over two data sets (model fingerprints agree; two model-free runs
 * count as one "model"). The same checks the server makes, so the pickers offer what it accepts.
 */
import type { RunInfo } from '../api';

/** Why runs `a` and `b` cannot be compared as two models, or null when they can. */
export function modelPairProblem(a: RunInfo, b: RunInfo): string | null {
  if (a.id === b.id) return null;
  if (a.n_samples !== b.n_samples) return `other samples (${b.n_samples} vs ${a.n_samples})`;
  if (!a.data_fingerprint || a.data_fingerprint !== b.data_fingerprint) return 'other samples or another order';
  return null;
}

/** Why runs `a` and `b` cannot be compared as two data sets, or null when they can. */
export function datasetPairProblem(a: RunInfo, b: RunInfo): string | null {
  if (a.id === b.id) return null;
  if ((a.model_fingerprint ?? 'none') !== (b.model_fingerprint ?? 'none')) return 'another model';
  return null;
}

export type PairProblem = (a: RunInfo, b: RunInfo) => string | null;

/**
 * The asked pair when it is valid (two different served runs the check accepts); else the asked A
 * (or the first run that has a partner) with its first accepted partner; else null.
 */
export function compatiblePair(runs: readonly RunInfo[], askedA: string | null, askedB: string | null, problem: PairProblem): [string, string] | null {
  const byId = new Map(runs.map((r) => [r.id, r]));
  const a = askedA ? byId.get(askedA) : undefined;
  const b = askedB ? byId.get(askedB) : undefined;
  if (a && b && a.id !== b.id && problem(a, b) === null) return [a.id, b.id];
  const partner = (x: RunInfo) => runs.find((y) => y.id !== x.id && problem(x, y) === null);
  for (const x of a ? [a, ...runs] : runs) {
    const y = partner(x);
    if (y) return [x.id, y.id];
  }
  return null;
}

/**
 * Why the asked pair was replaced, in a sentence ("“a” and “b” cannot be compared: another
 * model."), or null when both were asked, exist, and are the pair shown.
 */
export function replacedPairNotice(runs: readonly RunInfo[], askedA: string | null, askedB: string | null, shown: readonly [string, string] | null, problem: PairProblem): string | null {
  const a = runs.find((r) => r.id === askedA);
  const b = runs.find((r) => r.id === askedB);
  if (!a || !b || a.id === b.id) return null;
  const why = problem(a, b);
  if (why === null || (shown && shown[0] === a.id && shown[1] === b.id)) return null;
  return `“${a.name}” and “${b.name}” cannot be compared here: ${why}.`;
}
