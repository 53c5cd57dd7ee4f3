import type { Insight } from '../api';
import { EmptyState, ErrorState, Skeleton } from '../components/common';
import { useApp } from '../context';
import { useInsights } from '../hooks';
import { kindName, targetLabel, targetPatch, targetSearch } from '../lib/insights';

/** One finding: strength, kind, the sentence with its figures, and a link to the view that shows it. */
function Finding({ insight, open }: { insight: Insight; open: (i: Insight) => void }) {
  const pct = Math.round(insight.strength * 100);
  return (
    <li className="insight" data-testid="insight" data-kind={insight.kind}>
      <div className="insight-strength" title={`strength ${insight.strength.toFixed(2)} (0..1)`} aria-label={`strength ${insight.strength.toFixed(2)}`}>
        <span className="insight-strength-bar" style={{ width: `${Math.max(pct, 3)}%` }} />
        <span className="insight-strength-value">{insight.strength.toFixed(2)}</span>
      </div>
      <div className="insight-body">
        <span className={`insight-kind kind-${insight.kind}`}>{kindName(insight.kind)}</span>
        <p className="insight-sentence" data-testid="insight-sentence">
          {insight.sentence}
        </p>
      </div>
      <a
        className="btn insight-open"
        href={targetSearch(insight.target)}
        data-testid="insight-open"
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return; // a new tab keeps the link
          e.preventDefault();
          open(insight);
        }}
      >
        {targetLabel(insight)} →
      </a>
    </li>
  );
}

/** What the run's statistics say without hunting: ranked findings, each linking to its evidence. */
export function InsightsView() {
  const { run, update } = useApp();
  const found = useInsights(run.id);
  const open = (insight: Insight) => update(targetPatch(insight.target));
  const compared = found.data?.compare ?? [];

  return (
    <div className="view insights-view" data-testid="insights">
      <div className="toolbar">
        <div className="toolbar-title">
          <h2>Insights</h2>
          <span className="muted">
            Findings across every layer, strongest first: input statistics that dominate a component, where the classes
            separate, where errors gather{compared.length ? `, and against ${compared.join(', ')}` : ''}. Each states its
            statistic; thresholds are in the README.
          </span>
        </div>
      </div>
      {found.loading && !found.data && (
        <div className="insights-loading" data-testid="insights-loading">
          {Array.from({ length: 4 }, (_, i) => (
            <Skeleton key={i} height={44} className="insight-skeleton" />
          ))}
        </div>
      )}
      {found.error && <ErrorState error={found.error} title="Could not compute the insights" onRetry={found.retry} />}
      {found.data && found.data.insights.length === 0 && (
        <EmptyState title="No finding passed the thresholds" testId="insights-empty">
          No input statistic, class structure, error pattern or comparison reached its documented threshold for this run.
        </EmptyState>
      )}
      {found.data && found.data.insights.length > 0 && (
        <ol className="insight-list" aria-label="Findings, strongest first">
          {found.data.insights.map((insight, i) => (
            <Finding key={i} insight={insight} open={open} />
          ))}
        </ol>
      )}
    </div>
  );
}
