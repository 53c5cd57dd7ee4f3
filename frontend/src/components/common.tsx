import type { ReactNode } from 'react';
import { ApiError } from '../api';

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <span className="spinner" role="status" aria-label={label}>
      <span aria-hidden="true" />
    </span>
  );
}

export function Skeleton({ width, height, className = '' }: { width?: number | string; height?: number | string; className?: string }) {
  return <span className={`skeleton ${className}`} style={{ width, height }} aria-hidden="true" />;
}

/** What went wrong, in the server's own words, with a retry when one makes sense. */
export function ErrorState({ error, title, onRetry, compact = false }: { error: Error; title?: string; onRetry?: () => void; compact?: boolean }) {
  const detail = error instanceof ApiError ? error.detail : error.message;
  const status = error instanceof ApiError && error.status ? `HTTP ${error.status}` : null;
  return (
    <div className={`state state-error${compact ? ' compact' : ''}`} role="alert" data-testid="error-state">
      <div className="state-title">
        <span className="state-icon" aria-hidden="true">!</span>
        {title ?? 'Something went wrong'}
        {status && <span className="state-status">{status}</span>}
      </div>
      <p className="state-detail">{detail}</p>
      {onRetry && (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function EmptyState({ title, children, testId }: { title: string; children?: ReactNode; testId?: string }) {
  return (
    <div className="state state-empty" data-testid={testId}>
      <div className="state-title">{title}</div>
      {children && <div className="state-detail">{children}</div>}
    </div>
  );
}

export function LabelChip({ label, color }: { label: string | null; color: string }) {
  return (
    <span className="label-chip" title={label ?? 'no label'}>
      <span className="swatch" style={{ background: color }} aria-hidden="true" />
      <span className="label-chip-text">{label ?? '—'}</span>
    </span>
  );
}
