import { exportUrl } from '../api';
import { useApp } from '../context';
import { useFilterParam } from '../hooks';

const TABLES = [
  { table: 'scores', text: 'Scores', hint: 'every sample: id, label, its score on each component' },
  { table: 'extremes', text: 'Extremes', hint: 'the samples at both ends of each component, with their scores' },
  { table: 'associations', text: 'Associations', hint: 'each label and metadata column against each component' },
] as const;

/** Download the focused layer's tables as CSV or Parquet (the files `ee.export_run` writes). */
export function ExportMenu({ basis = 'pca', basisName = 'PCA' }: { basis?: string | null; basisName?: string }) {
  const { run, layer } = useApp();
  const key = basis ?? 'pca';
  const filter = useFilterParam();
  return (
    <details className="export-menu" data-testid="export-menu">
      <summary className="btn btn-small" title={`Download the tables of layer ${layer.name}`}>
        Export ▾
      </summary>
      <div className="export-pop card" role="menu">
        <div className="muted small export-head">
          Layer <span className="mono">{layer.name}</span> of {run.name} · {key === 'pca' ? 'PCA' : basisName}
          {filter && ' · the filtered samples'}
        </div>
        {TABLES.map((t) => (
          <div key={t.table} className="export-row" title={t.hint}>
            <span>{t.text}</span>
            {(['csv', 'parquet'] as const).map((f) => (
              <a key={f} className="btn btn-small" href={exportUrl(run.id, layer.name, t.table, f, key, t.table === 'associations' ? undefined : filter)} download role="menuitem" data-testid={`export-${t.table}-${f}`}>
                {f === 'csv' ? 'CSV' : 'Parquet'}
              </a>
            ))}
          </div>
        ))}
      </div>
    </details>
  );
}
