import { useRef, useState } from 'react';
import { PngButton } from '../components/PngButton';
import { type Associations, type PCCorrelation } from '../api';
import { EmptyState, ErrorState, Skeleton, Spinner } from '../components/common';
import { useSize } from '../components/useSize';
import { useApp } from '../context';
import { useAssociationsOf, useCssVar, useNeighbourCorrelations, usePcCorrelation } from '../hooks';
import { chosenLayers, componentMeaning, divergingColor, filterLinks, linkWidth, type Link } from '../lib/analysis';
import { formatPercent, pcName } from '../lib/format';
import type { ComponentRef } from '../lib/urlState';

const NODE_W = 100;
const NODE_H = 26;
const ROW = 36;
const HEAD = 46;
const SIDE = 24;

interface LayerLinks {
  left: string;
  right: string;
  links: Link[];
}

const sameRef = (a: ComponentRef | null, layer: string, pc: number) => !!a && a.layer === layer && a.pc === pc;

/** Components of the chosen layers as columns of nodes, linked by |r| between neighbours; and a heatmap. */
export function LayersView() {
  const { run, state, update } = useApp();
  const chosen = chosenLayers(run, state.rows);
  const graphRef = useRef<HTMLElement>(null);
  const { pairs, corr } = useNeighbourCorrelations(run.id, chosen);
  // what each component reads as, for the node titles and the details panel; optional
  const assoc = useAssociationsOf(run.id, chosen);
  const assocOf = (layer: string): Associations | null => assoc.data?.[chosen.indexOf(layer)] ?? null;

  const toggleLayer = (name: string) => {
    const names = run.layers.map((l) => l.name);
    const next = chosen.includes(name) ? chosen.filter((n) => n !== name) : names.filter((n) => n === name || chosen.includes(n));
    if (next.length < 2) return;
    update({ rows: next.length === names.length ? [] : next, node: state.node && next.includes(state.node.layer) ? state.node : null });
  };

  return (
    <div className="view layers-view" data-testid="layers">
      <div className="toolbar">
        <div className="toolbar-title">
          <h2>Components across layers</h2>
          <span className="muted">How the principal components of one layer carry over into the next: links join components whose scores correlate.</span>
        </div>
      </div>

      {run.layers.length < 2 ? (
        <EmptyState title="One layer only" testId="layers-empty">
          Relating layers needs a run with at least two layers; this one has only <code>{run.layers[0]?.name}</code>.
        </EmptyState>
      ) : (
        <>
          <section className="card corr-card" ref={graphRef}>
            <div className="card-head corr-head">
              <div className="layer-chips" role="group" aria-label="Layers to show">
                {run.layers.map((l) => {
                  const on = chosen.includes(l.name);
                  return (
                    <button
                      key={l.name}
                      type="button"
                      className={`row-toggle${on ? ' on' : ''}`}
                      aria-pressed={on}
                      disabled={on && chosen.length <= 2}
                      onClick={() => toggleLayer(l.name)}
                      title={on ? (chosen.length <= 2 ? 'At least two layers are needed' : `Hide ${l.name}`) : `Show ${l.name}`}
                      data-testid="layer-chip"
                      data-layer={l.name}
                    >
                      <span className="mono">{l.name}</span>
                    </button>
                  );
                })}
              </div>
              <div className="toolbar-spacer" />
              <ThresholdControl />
              <PngButton target={graphRef} name={`${run.id}-components-across-layers`} title="Download the graph as PNG" />
            </div>
            {corr.error ? (
              <ErrorState error={corr.error} title="Could not correlate the layers' components" onRetry={corr.retry} />
            ) : corr.data && corr.data.length === pairs.length ? (
              <CorrGraph
                layers={chosen}
                matrices={corr.data}
                pairs={pairs.map(([a, b]) => ({ left: a, right: b }))}
                assocOf={assocOf}
                loading={corr.loading}
              />
            ) : (
              <div className="corr-loading" aria-busy="true">
                <Spinner label="Correlating components" /> <span className="muted">Correlating the components of {chosen.length} layers…</span>
              </div>
            )}
          </section>
          <HeatmapCard chosen={chosen} />
        </>
      )}
      {state.node && !chosen.includes(state.node.layer) && (
        <button type="button" className="link-button small" onClick={() => update({ node: null })}>
          Clear the highlighted component
        </button>
      )}
    </div>
  );
}

function ThresholdControl() {
  const { state, update } = useApp();
  return (
    <label className="n-control threshold-control">
      <span>Link when |r| ≥</span>
      <input
        type="range"
        min={0.05}
        max={0.95}
        step={0.05}
        value={state.threshold}
        onChange={(e) => update({ threshold: Number(e.target.value) }, { replace: true })}
        aria-label="Correlation threshold for links"
        data-testid="threshold-input"
      />
      <output className="n-value" data-testid="threshold-value">
        {state.threshold.toFixed(2)}
      </output>
    </label>
  );
}

interface GraphProps {
  layers: string[];
  matrices: PCCorrelation[];
  pairs: { left: string; right: string }[];
  assocOf: (layer: string) => Associations | null;
  loading: boolean;
}

function CorrGraph({ layers, matrices, pairs, assocOf, loading }: GraphProps) {
  const { run, state, update } = useApp();
  const [boxRef, size] = useSize<HTMLDivElement>();
  const threshold = state.threshold;
  const node = state.node && layers.includes(state.node.layer) ? state.node : null;

  const infos = layers.map((name) => run.layers.find((l) => l.name === name)!);
  const maxK = Math.max(...infos.map((l) => l.n_components));
  const width = Math.max(size.width, layers.length * (NODE_W + 80));
  const height = HEAD + maxK * ROW + 8;
  const colX = (i: number) => (layers.length === 1 ? width / 2 : SIDE + NODE_W / 2 + (i * (width - 2 * SIDE - NODE_W)) / (layers.length - 1));
  const rowY = (pc: number) => HEAD + pc * ROW + ROW / 2;

  const layerLinks: LayerLinks[] = pairs.map((p, i) => ({ ...p, links: filterLinks(matrices[i].r, threshold) }));
  const total = layerLinks.reduce((a, l) => a + l.links.length, 0);
  const touches = (ll: LayerLinks, link: Link) =>
    !!node && ((node.layer === ll.left && node.pc === link.a) || (node.layer === ll.right && node.pc === link.b));
  // nodes linked to the highlighted one
  const neighbours = new Set<string>();
  if (node)
    for (const ll of layerLinks)
      for (const link of ll.links)
        if (touches(ll, link)) {
          neighbours.add(`${ll.left}:${link.a}`);
          neighbours.add(`${ll.right}:${link.b}`);
        }

  const select = (layer: string, pc: number) => update({ node: sameRef(node, layer, pc) ? null : { layer, pc } }, { replace: false });

  return (
    <div className="corr-body">
      <div className="corr-meta">
        <span data-testid="link-count" data-count={total}>
          {total} {total === 1 ? 'link' : 'links'}
        </span>
        <span className="muted">
          · thickness by |r| · <span className="sign-pos">■ positive</span> <span className="sign-neg">■ negative</span> · node bar: share of variance
        </span>
        {loading && <Spinner label="Updating" />}
        <div className="toolbar-spacer" />
        <span className="muted small">{node ? 'Click the component again, or the background, to show all links.' : 'Click a component to follow its links.'}</span>
      </div>
      <div className="corr-scroller" ref={boxRef}>
        <svg className={`corr-graph${node ? ' has-focus' : ''}`} width={width} height={height} data-testid="corr-graph" role="img" aria-label={`Components of ${layers.join(', ')}, linked where |r| ≥ ${threshold}`}>
          <rect x={0} y={0} width={width} height={height} className="corr-bg" onClick={() => node && update({ node: null })} />
          {infos.map((l, i) => (
            <g key={l.name} className="corr-col-head">
              <text x={colX(i)} y={16} textAnchor="middle" className="corr-layer-name">
                {l.name}
              </text>
              <text x={colX(i)} y={31} textAnchor="middle" className="corr-layer-meta">
                D = {l.dim} · {l.n_components} PCs
              </text>
            </g>
          ))}
          {layerLinks.map((ll, i) => (
            <g key={`${ll.left}>${ll.right}`}>
              {ll.links.map((link) => {
                const x0 = colX(i) + NODE_W / 2;
                const x1 = colX(i + 1) - NODE_W / 2;
                const y0 = rowY(link.a);
                const y1 = rowY(link.b);
                const mx = (x0 + x1) / 2;
                const on = touches(ll, link);
                return (
                  <path
                    key={`${link.a}-${link.b}`}
                    d={`M${x0},${y0} C${mx},${y0} ${mx},${y1} ${x1},${y1}`}
                    className={`corr-link ${link.r >= 0 ? 'link-pos' : 'link-neg'}${on ? ' on' : ''}`}
                    strokeWidth={linkWidth(link.r, threshold)}
                    data-testid="corr-link"
                  >
                    <title>{`${ll.left} ${pcName(link.a)} ↔ ${ll.right} ${pcName(link.b)}: r = ${link.r >= 0 ? '+' : '−'}${Math.abs(link.r).toFixed(2)}`}</title>
                  </path>
                );
              })}
            </g>
          ))}
          {infos.map((l, i) =>
            l.explained_variance_ratio.map((ratio, pc) => {
              const x = colX(i) - NODE_W / 2;
              const y = rowY(pc) - NODE_H / 2;
              const isOn = sameRef(node, l.name, pc);
              const isNear = neighbours.has(`${l.name}:${pc}`);
              const meaning = componentMeaning(assocOf(l.name)?.columns, pc, state.color);
              const frac = Math.min(1, ratio / Math.max(...l.explained_variance_ratio, 1e-12));
              return (
                <g
                  key={`${l.name}:${pc}`}
                  className={`corr-node${isOn ? ' on' : ''}${isNear ? ' near' : ''}`}
                  transform={`translate(${x},${y})`}
                  onClick={() => select(l.name, pc)}
                  role="button"
                  tabIndex={0}
                  onKeyDown={(e) => {
                    if (e.key === 'Enter' || e.key === ' ') {
                      e.preventDefault();
                      select(l.name, pc);
                    }
                  }}
                  aria-pressed={isOn}
                  aria-label={`${l.name} ${pcName(pc)}, ${formatPercent(ratio)} of variance`}
                  data-testid="corr-node"
                  data-layer={l.name}
                  data-component={pc}
                >
                  <title>{`${l.name} · ${pcName(pc)} · ${formatPercent(ratio)} of variance${meaning ? `\n${meaning.summary} (${meaning.stat})` : ''}`}</title>
                  <rect width={NODE_W} height={NODE_H} rx={6} className="corr-node-box" />
                  <rect x={1} y={NODE_H - 5} width={Math.max(2, (NODE_W - 2) * frac)} height={4} rx={1.5} className="corr-node-bar" />
                  <text x={8} y={NODE_H / 2 + 1} dominantBaseline="middle" className="corr-node-pc">
                    {pcName(pc)}
                  </text>
                  <text x={NODE_W - 8} y={NODE_H / 2 + 1} dominantBaseline="middle" textAnchor="end" className="corr-node-var">
                    {formatPercent(ratio)}
                  </text>
                </g>
              );
            }),
          )}
        </svg>
      </div>
      {total === 0 && (
        <p className="hint corr-none" data-testid="no-links">
          No pair of components in neighbouring layers reaches |r| ≥ {threshold.toFixed(2)}. Lower the threshold to see weaker links.
        </p>
      )}
      {node && <NodeDetails node={node} layerLinks={layerLinks} assoc={assocOf(node.layer)} />}
    </div>
  );
}

function NodeDetails({ node, layerLinks, assoc }: { node: ComponentRef; layerLinks: LayerLinks[]; assoc: Associations | null }) {
  const { run, state, update } = useApp();
  const layer = run.layers.find((l) => l.name === node.layer);
  const meaning = componentMeaning(assoc?.columns, node.pc, state.color);
  const rows: { layer: string; pc: number; r: number; dir: '←' | '→' }[] = [];
  for (const ll of layerLinks)
    for (const link of ll.links) {
      if (ll.left === node.layer && link.a === node.pc) rows.push({ layer: ll.right, pc: link.b, r: link.r, dir: '→' });
      if (ll.right === node.layer && link.b === node.pc) rows.push({ layer: ll.left, pc: link.a, r: link.r, dir: '←' });
    }
  rows.sort((a, b) => Math.abs(b.r) - Math.abs(a.r));
  return (
    <div className="node-details" data-testid="node-details">
      <div className="node-details-head">
        <strong>
          <span className="mono">{node.layer}</span> · {pcName(node.pc)}
        </strong>
        <span className="muted">{formatPercent(layer?.explained_variance_ratio[node.pc] ?? NaN)} of variance</span>
        {meaning && (
          <span className="node-meaning">
            {meaning.summary} <span className="stat-chip">{meaning.stat}</span>
          </span>
        )}
        <div className="toolbar-spacer" />
        <button type="button" className="btn btn-small" onClick={() => update({ tab: 'probe', layer: node.layer, pc: node.pc, q: 0.5 })}>
          Probe {pcName(node.pc)}
        </button>
      </div>
      {rows.length ? (
        <ul className="node-links">
          {rows.map((r) => (
            <li key={`${r.layer}:${r.pc}`}>
              <button type="button" className="link-button" onClick={() => update({ node: { layer: r.layer, pc: r.pc } })}>
                {r.dir} <span className="mono">{r.layer}</span> {pcName(r.pc)}
              </button>
              <span className={r.r >= 0 ? 'sign-pos' : 'sign-neg'}>
                r = {r.r >= 0 ? '+' : '−'}
                {Math.abs(r.r).toFixed(2)}
              </span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="hint">No links at |r| ≥ {state.threshold.toFixed(2)}: this component has no strong counterpart in the neighbouring layers.</p>
      )}
    </div>
  );
}

/** Any two layers: components of A (rows) x components of B (columns), coloured by r. */
function HeatmapCard({ chosen }: { chosen: string[] }) {
  const { run, state, update, theme } = useApp();
  const names = run.layers.map((l) => l.name);
  const a = state.heatA && names.includes(state.heatA) ? state.heatA : chosen[0];
  const b = state.heatB && names.includes(state.heatB) ? state.heatB : (chosen[1] ?? chosen[0]);
  const corr = usePcCorrelation(run.id, a, b);
  const panel = useCssVar('--bg-panel', theme);
  const mid = /^#[0-9a-f]{6}$/i.test(panel) ? panel : '#ffffff';
  const select = (which: 'heatA' | 'heatB', value: string) => update({ [which]: value });
  const cardRef = useRef<HTMLElement>(null);
  return (
    <section className="card heatmap-card" data-testid="heatmap-card" ref={cardRef}>
      <div className="card-head">
        <h3>Correlation of two layers' components</h3>
        <div className="toolbar-spacer" />
        <LayerPicker label="Layer A (rows)" value={a} names={names} onChange={(v) => select('heatA', v)} testId="heat-a-select" />
        <LayerPicker label="Layer B (columns)" value={b} names={names} onChange={(v) => select('heatB', v)} testId="heat-b-select" />
        <PngButton target={cardRef} name={`${run.id}-${a}-vs-${b}-correlation`} title="Download the heatmap as PNG" />
      </div>
      {corr.error ? (
        <ErrorState error={corr.error} title={`Could not correlate ${a} with ${b}`} onRetry={corr.retry} compact />
      ) : corr.data ? (
        <RHeatmap data={corr.data} mid={mid} />
      ) : (
        <Skeleton height={300} width={420} />
      )}
    </section>
  );
}

function RHeatmap({ data, mid }: { data: PCCorrelation; mid: string }) {
  const [hover, setHover] = useState<[number, number] | null>(null);
  const ka = data.r.length;
  const kb = data.r[0]?.length ?? 0;
  const cell = 34;
  const left = 92;
  const top = 28;
  const width = left + kb * cell + 2;
  const height = top + ka * cell + 2;
  const hv = hover ? data.r[hover[0]]?.[hover[1]] ?? null : null;
  const stops = Array.from({ length: 11 }, (_, i) => `${divergingColor(-1 + i / 5, mid)} ${i * 10}%`).join(', ');
  if (!ka || !kb) return <EmptyState title="No components to correlate" />;
  return (
    <div className="heatmap-body">
      <svg width={width} height={height} className="heatmap" data-testid="corr-heatmap" onMouseLeave={() => setHover(null)} role="img" aria-label={`r between ${data.layer_a} and ${data.layer_b}`}>
        {data.ratio_b.slice(0, kb).map((_, j) => (
          <text key={j} x={left + j * cell + cell / 2} y={top - 9} textAnchor="middle" className={`heat-label${hover?.[1] === j ? ' on' : ''}`}>
            {j + 1}
          </text>
        ))}
        {data.r.map((row, i) => (
          <g key={i}>
            <text x={left - 8} y={top + i * cell + cell / 2} textAnchor="end" dominantBaseline="middle" className={`heat-label${hover?.[0] === i ? ' on' : ''}`}>
              {pcName(i)} <tspan className="heat-label-var">{formatPercent(data.ratio_a[i] ?? NaN, 0)}</tspan>
            </text>
            {row.map((v, j) => (
              <rect
                key={j}
                x={left + j * cell + 1}
                y={top + i * cell + 1}
                width={cell - 2}
                height={cell - 2}
                rx={3}
                fill={divergingColor(v, mid)}
                className={`heat-cell${hover && hover[0] === i && hover[1] === j ? ' on' : ''}`}
                onMouseEnter={() => setHover([i, j])}
                data-testid="heatmap-cell"
                data-r={v === null ? '' : v.toFixed(3)}
              >
                <title>{`${data.layer_a} ${pcName(i)} × ${data.layer_b} ${pcName(j)}: r = ${v === null ? '–' : v.toFixed(3)}`}</title>
              </rect>
            ))}
          </g>
        ))}
      </svg>
      <div className="heatmap-side">
        <div className="heat-readout" data-testid="heatmap-readout" aria-live="polite">
          {hover ? (
            <>
              <span>
                <span className="mono">{data.layer_a}</span> {pcName(hover[0])} × <span className="mono">{data.layer_b}</span> {pcName(hover[1])}
              </span>
              <strong className={hv !== null && hv < 0 ? 'sign-neg' : 'sign-pos'}>r = {hv === null ? '–' : `${hv >= 0 ? '+' : '−'}${Math.abs(hv).toFixed(2)}`}</strong>
            </>
          ) : (
            <span className="muted">Hover a cell to read r. Rows: {data.layer_a}; columns: {data.layer_b} (PC numbers).</span>
          )}
        </div>
        <div className="legend legend-numeric">
          <div className="legend-title">Pearson r</div>
          <div className="ramp" style={{ background: `linear-gradient(to right, ${stops})` }} aria-hidden="true" />
          <div className="ramp-labels">
            <span>−1</span>
            <span>0</span>
            <span>+1</span>
          </div>
        </div>
      </div>
    </div>
  );
}

interface LayerPickerProps {
  label: string;
  value: string;
  names: string[];
  onChange: (name: string) => void;
  testId: string;
}

/** A labelled select of layer names. */
function LayerPicker({ label, value, names, onChange, testId }: LayerPickerProps) {
  return (
    <label className="field">
      <span>{label}</span>
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} aria-label={label}>
        {names.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
    </label>
  );
}
