import { useMemo } from 'react';
import { CategoricalLegend, NumericLegend } from '../../components/Legend';
import { extent } from '../../lib/binary';
import { useAppSlices } from '../../context';
import { categoricalColor, MISSING_COLOR } from '../../lib/colors';
import { isolateLabel, labelShown } from '../../lib/filter';
import { LABEL_COLUMN } from '../../lib/runInfo';
import type { Coloring } from './axes';

/** The legend of the colour-by column: categories with counts, or the numeric ramp. */
export function ScatterLegend({ coloring }: { coloring: Coloring }) {
  const { column, values } = coloring;
  const { state, update } = useAppSlices('filter');
  const items = useMemo(() => {
    if (!column || !values || column.kind !== 'categorical') return [];
    const cats = (column.categories ?? []).map(String);
    const counts = new Array(cats.length + 1).fill(0);
    for (let i = 0; i < values.length; i += 1) {
      const c = values[i];
      counts[c >= 0 && c < cats.length ? c : cats.length] += 1;
    }
    const list = cats.map((label, i) => ({ label, color: categoricalColor(i), count: counts[i] }));
    if (counts[cats.length]) list.push({ label: '(missing)', color: MISSING_COLOR, count: counts[cats.length] });
    return list;
  }, [column, values]);
  if (!column || !values) return null;
  if (column.kind === 'categorical') {
    if (column.name !== LABEL_COLUMN) return <CategoricalLegend items={items} title={column.name} />;
    // the label legend: a click isolates a label in the shared filter (gallery and scatter alike)
    const pick = (label: string) => update({ filter: isolateLabel(state.filter, label) }, { replace: true });
    return <CategoricalLegend items={items} title={column.name} onPick={pick} isOff={(l) => !labelShown(state.filter, l)} />;
  }
  const [min, max] = extent(values);
  let missing = 0;
  for (let i = 0; i < values.length; i += 1) if (!Number.isFinite(values[i])) missing += 1;
  return <NumericLegend title={column.name} min={min} max={max} missing={missing} />;
}
