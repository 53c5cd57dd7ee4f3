import { useCallback, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import type { RunInfo } from './api';
import { EmptyState, ErrorState, Skeleton } from './components/common';
import { ErrorBoundary } from './components/ErrorBoundary';
import { FilterBar } from './components/FilterBar';
import { Lightbox } from './components/Lightbox';
import { AppContext, type AppContextValue } from './context';
import { useRuns, useSidebarOpen, useTheme, useUrlState, type Theme } from './hooks';
import { formatCount } from './lib/format';
import { findLayer, labelOrder } from './lib/runInfo';
import { TABS, type Tab } from './lib/urlState';
import { CompareView } from './views/CompareView';
import { DatasetsView } from './views/DatasetsView';
import { GalleryView } from './views/GalleryView';
import { InsightsView } from './views/InsightsView';
import { LayersView } from './views/LayersView';
import { MeaningView } from './views/MeaningView';
import { ProbeView } from './views/ProbeView';
import { SampleView } from './views/SampleView';
import { ScatterView } from './views/ScatterView';
import { Sidebar } from './views/Sidebar';

const TAB_NAMES: Record<Tab, string> = {
  insights: 'Insights',
  gallery: 'Gallery',
  probe: 'Probe',
  scatter: 'Scatter',
  meaning: 'Meaning',
  layers: 'Layers',
  compare: 'Models',
  datasets: 'Data sets',
};

/** The views the shared sample filter applies to (the filter bar shows above them). */
const FILTERED_TABS: readonly Tab[] = ['gallery', 'probe', 'scatter', 'datasets'];

function ThemeToggle({ theme, toggle }: { theme: Theme; toggle: () => void }) {
  const next = theme === 'dark' ? 'light' : 'dark';
  return (
    <button type="button" className="btn btn-icon theme-toggle" onClick={toggle} aria-label={`Switch to ${next} theme`} title={`Switch to ${next} theme`} data-testid="theme-toggle">
      {theme === 'dark' ? '☀' : '☾'}
    </button>
  );
}

function SidebarToggle({ open, toggle }: { open: boolean; toggle: () => void }) {
  const what = open ? 'Hide the runs and layers' : 'Show the runs and layers';
  return (
    <button type="button" className="btn btn-icon sidebar-toggle" onClick={toggle} aria-label={what} title={what} aria-expanded={open} aria-controls="sidebar" data-testid="sidebar-toggle">
      <svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true">
        <rect x="1.5" y="2.5" width="13" height="11" rx="1.5" fill="none" stroke="currentColor" />
        <rect x="2" y="3" width="4.5" height="10" fill="currentColor" opacity={open ? 0.6 : 0.15} />
      </svg>
    </button>
  );
}

function Brand() {
  return (
    <div className="brand">
      <svg width="22" height="22" viewBox="0 0 16 16" aria-hidden="true">
        <rect x="1" y="9" width="3" height="6" rx="0.8" fill="var(--accent)" opacity="0.55" />
        <rect x="6" y="5" width="3" height="10" rx="0.8" fill="var(--accent)" opacity="0.8" />
        <rect x="11" y="1" width="3" height="14" rx="0.8" fill="var(--accent)" />
      </svg>
      <span>Embedding Explorer</span>
    </div>
  );
}

function Tabs({ tab, onChange }: { tab: Tab; onChange: (t: Tab) => void }) {
  const refs = useRef<Record<string, HTMLButtonElement | null>>({});
  const onKey = (e: KeyboardEvent) => {
    const i = TABS.indexOf(tab);
    const j = e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i + TABS.length - 1) % TABS.length : -1;
    if (j >= 0) {
      e.preventDefault();
      onChange(TABS[j]);
      refs.current[TABS[j]]?.focus();
    }
  };
  return (
    <div className="tabs" role="tablist" aria-label="Views" onKeyDown={onKey}>
      {TABS.map((t) => (
        <button
          key={t}
          ref={(el) => {
            refs.current[t] = el;
          }}
          type="button"
          role="tab"
          id={`tab-${t}`}
          aria-selected={tab === t}
          aria-controls="main-panel"
          tabIndex={tab === t ? 0 : -1}
          className={`tab${tab === t ? ' on' : ''}`}
          onClick={() => onChange(t)}
          data-testid={`tab-${t}`}
        >
          {TAB_NAMES[t]}
        </button>
      ))}
    </div>
  );
}

function LoadingShell() {
  return (
    <div className="app-body" aria-busy="true">
      <nav className="sidebar">
        {Array.from({ length: 3 }, (_, i) => (
          <div key={i} className="layer-item">
            <Skeleton height={16} width="60%" />
            <Skeleton height={12} width="40%" />
            <Skeleton height={46} />
          </div>
        ))}
      </nav>
      <main className="main">
        <div className="view">
          <Skeleton height={28} width={260} />
          <div className="gallery-columns" style={{ marginTop: 16 }}>
            {Array.from({ length: 5 }, (_, i) => (
              <Skeleton key={i} className="sk-column" />
            ))}
          </div>
        </div>
      </main>
    </div>
  );
}

export function App() {
  const [state, update] = useUrlState();
  const [theme, toggleTheme] = useTheme();
  const [sidebarOpen, toggleSidebar] = useSidebarOpen();
  const runs = useRuns();

  const run: RunInfo | null = runs.data ? runs.data.find((r) => r.id === state.run) ?? runs.data[0] ?? null : null;
  const layer = run ? findLayer(run, state.layer) : null;
  // the samples the open one was shown among (a gallery end, the probe's row): the lightbox's steps
  const [sampleList, setSampleList] = useState<readonly number[]>([]);
  const [lightbox, setLightbox] = useState<{ ids: readonly number[]; index: number } | null>(null);
  const openSample = useCallback(
    (id: number, list?: readonly number[]) => {
      if (list) setSampleList(list);
      update({ sample: id });
    },
    [update],
  );
  const openLightbox = useCallback((id: number) => {
    const i = sampleList.indexOf(id);
    setLightbox(i >= 0 ? { ids: sampleList, index: i } : { ids: [id], index: 0 });
  }, [sampleList]);
  const closeLightbox = useCallback(() => {
    if (lightbox) update({ sample: lightbox.ids[lightbox.index] }); // the sample view follows the steps
    setLightbox(null);
  }, [lightbox, update]);
  const stepLightbox = useCallback((index: number) => setLightbox((lb) => (lb ? { ...lb, index } : lb)), []);
  const labels = useMemo(() => (run ? labelOrder(run) : []), [run]);
  const ctx: AppContextValue | null = useMemo(
    () => (runs.data && run && layer ? { runs: runs.data, run, layer, labels, state, update, theme, openSample, openLightbox } : null),
    [runs.data, run, layer, labels, state, update, theme, openSample, openLightbox],
  );

  let body;
  if (runs.loading) body = <LoadingShell />;
  else if (runs.error)
    body = (
      <div className="center-state">
        <ErrorState error={runs.error} title="Could not load the runs" onRetry={runs.retry} />
      </div>
    );
  else if (!runs.data?.length)
    body = (
      <div className="center-state">
        <EmptyState title="No runs to show" testId="no-runs">
          The server serves no runs. Start it with a run directory, e.g. <code>embedding-explorer serve runs/my-run</code>.
        </EmptyState>
      </div>
    );
  else if (run && !layer)
    body = (
      <div className="center-state">
        <EmptyState title={`Run “${run.name}” has no layers`}>Explore it with at least one layer name.</EmptyState>
      </div>
    );
  else if (ctx && run && layer) {
    const notices: string[] = [];
    if (state.run && state.run !== run.id) notices.push(`There is no run “${state.run}”; showing “${run.name}”.`);
    if (state.layer && state.layer !== layer.name) notices.push(`Run “${run.name}” has no layer “${state.layer}”; showing “${layer.name}”.`);
    body = (
      <AppContext.Provider value={ctx}>
        <div className="app-body">
          {sidebarOpen && <Sidebar runs={runs.data} run={run} focused={layer.name} state={state} update={update} />}
          <main className="main" id="main-panel" role="tabpanel" aria-labelledby={`tab-${state.tab}`}>
            {notices.map((n) => (
              <div key={n} className="notice" role="status">
                {n}
              </div>
            ))}
            {FILTERED_TABS.includes(state.tab) && <FilterBar key={run.id} />}
            <ErrorBoundary resetKey={[state.tab, run.id, layer.name, state.basis, state.dirA, state.dirB].join('\u0000')}>
              {state.tab === 'insights' && <InsightsView />}
              {state.tab === 'gallery' && <GalleryView />}
              {state.tab === 'probe' && <ProbeView />}
              {state.tab === 'scatter' && <ScatterView />}
              {state.tab === 'meaning' && <MeaningView />}
              {state.tab === 'layers' && <LayersView />}
              {state.tab === 'compare' && <CompareView />}
              {state.tab === 'datasets' && <DatasetsView />}
            </ErrorBoundary>
          </main>
          {state.sample !== null && state.sample < run.n_samples && (
            <ErrorBoundary resetKey={`${run.id}\u0000${state.sample}`} title="This sample failed to show">
              <SampleView key={state.sample} id={state.sample} />
            </ErrorBoundary>
          )}
          {lightbox && <Lightbox run={run} ids={lightbox.ids} index={lightbox.index} onStep={stepLightbox} onClose={closeLightbox} />}
        </div>
      </AppContext.Provider>
    );
  }

  return (
    <div className="app">
      <header className="topbar">
        {ctx && <SidebarToggle open={sidebarOpen} toggle={toggleSidebar} />}
        <Brand />
        {run && (
          <div className="run-summary" data-testid="run-summary">
            <span className="run-summary-name" title={run.name}>
              {run.name}
            </span>
            <span className="run-summary-meta muted">
              {formatCount(run.n_samples)} samples · {run.layers.length} {run.layers.length === 1 ? 'layer' : 'layers'}
              {run.labels.present ? ` · ${labels.length} labels` : ''}
            </span>
          </div>
        )}
        <div className="toolbar-spacer" />
        {ctx && <Tabs tab={state.tab} onChange={(t) => update({ tab: t })} />}
        <div className="toolbar-spacer" />
        <ThemeToggle theme={theme} toggle={toggleTheme} />
      </header>
      {body}
    </div>
  );
}
