import { Component, type ErrorInfo, type ReactNode } from 'react';
import { ErrorState } from './common';

interface Props {
  /** The boundary starts afresh when this changes (another tab, run, layer or basis). */
  resetKey: string;
  title?: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
  key: string;
}

/**
 * One view's rendering error shows as a message in its place (the sidebar, tabs and other views
 * keep working) instead of unmounting the whole app, which a link to the failing view would
 * otherwise do again on every load.
 */
export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null, key: this.props.resetKey };

  static getDerivedStateFromError(error: unknown): Partial<State> {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    return props.resetKey !== state.key ? { error: null, key: props.resetKey } : null;
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error('A view failed to render', error, info.componentStack);
  }

  render(): ReactNode {
    if (this.state.error) {
      return (
        <div className="view" data-testid="view-error">
          <ErrorState
            error={this.state.error}
            title={this.props.title ?? 'This view failed to show'}
            onRetry={() => this.setState({ error: null })}
          />
        </div>
      );
    }
    return this.props.children;
  }
}
