import { useMemo } from 'react';
import { CategoricalLegend, NumericLegend } from '../../components/Legend';
import { extent } from '../../lib/binary';
import { categoricalColor, MISSING_COLOR } from '../../lib/colors';
import type { Coloring } from './axes';

/** The legend of the colour-by column: categories with counts, or the numeric ramp. */
export function ScatterLegend({ coloring }: { coloring: Coloring }) {
  const { column, values } = coloring;
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
  if (column.kind === 'categorical') return <CategoricalLegend items={items} title={column.name} />;
  const [min, max] = extent(values);
  let missing = 0;
  for (let i = 0; i < values.length; i += 1) if (!Number.isFinite(values[i])) missing += 1;
  return <NumericLegend title={column.name} min={min} max={max} missing={missing} />;
}
