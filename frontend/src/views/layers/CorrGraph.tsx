import type { Associations, PCCorrelation } from '../../api';
import { Spinner } from '../../components/common';
import { useSize } from '../../components/useSize';
import { useAppSlices } from '../../context';
import { componentMeaning, filterLinks, linkWidth, type Link } from '../../lib/analysis';
import { formatPercent, pcName } from '../../lib/format';
import type { ComponentRef } from '../../lib/urlState';

const NODE_W = 100;
const NODE_H = 26;
const ROW = 36;
const HEAD = 46;
const SIDE = 24;

export interface LayerLinks {
  left: string;
  right: string;
  links: Link[];
}

const sameRef = (a: ComponentRef | null, layer: string, pc: number) => !!a && a.layer === layer && a.pc === pc;

interface GraphProps {
  layers: string[];
  matrices: PCCorrelation[];
  pairs: { left: string; right: string }[];
  assocOf: (layer: string) => Associations | null;
  loading: boolean;
}

/** The components of the chosen layers as columns of nodes, linked where |r| between neighbours reaches the threshold. */
export function CorrGraph({ layers, matrices, pairs, assocOf, loading }: GraphProps) {
  const { run, state, update } = useAppSlices('layers', 'scatter');
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
  const { run, state, update } = useAppSlices('layers', 'scatter');
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
