import { renderUrl, type RunInfo } from '../../api';
import { LabelChip } from '../../components/common';
import { useSampleText } from '../../hooks';

/** The hovered point: its rendering, label and scores. */
export function ScatterTooltip(props: { run: RunInfo; id: number; left: number; top: number; width: number; label: string | null; labelColor: string; xText: string; yText: string }) {
  const { run } = props;
  const isText = run.rendering_kind === 'text/plain';
  const text = useSampleText(run.id, props.id, isText);
  const flip = props.left > props.width - 240;
  return (
    <div
      className="scatter-tooltip"
      style={{ left: flip ? undefined : props.left + 14, right: flip ? props.width - props.left + 14 : undefined, top: Math.max(4, props.top - 20) }}
      data-testid="scatter-tooltip"
      role="tooltip"
    >
      {run.rendering_kind === 'image/png' && <img src={renderUrl(run.id, props.id)} alt="" className="tooltip-img" />}
      {isText && <p className="tooltip-text">{text ?? '…'}</p>}
      <div className="tooltip-meta">
        <strong>Sample {props.id}</strong>
        {props.label && <LabelChip label={props.label} color={props.labelColor} />}
        <span className="muted small">
          {props.xText} · {props.yText}
        </span>
      </div>
    </div>
  );
}
