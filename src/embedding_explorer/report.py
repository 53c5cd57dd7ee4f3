"""A static, self-contained HTML report of a run: one file that opens from disk with no server.

Per layer: the variance per component (inline SVG bars, cumulative line), what each component
goes with (the association summaries of the labels and metadata columns), and the gallery of
both extremes of every component with their dominant labels. Thumbnails are embedded once each
as base64 PNG data URLs in CSS classes (a sample at the extremes of several components or
layers costs its bytes once); texts are escaped. Nothing is fetched: no scripts, fonts or
images from elsewhere.
"""

from __future__ import annotations

import base64
import html
import os
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._version import __version__
from .checks import positive_int
from .exceptions import EmbeddingExplorerError
from .export import association_table, label_column
from .records import IMAGE, TEXT
from .report_style import STYLE

if TYPE_CHECKING:
    from .run import Layer, Run

SNIPPET_CHARS = 180
"""Texts longer than this are cut in the gallery (the whole text is the tooltip)."""
TOOLTIP_CHARS = 1000
TOKEN_WINDOW = 6  # tokens shown each side of a token sample (per-token runs)
PIXELATED_UP_TO = 48
"""Thumbnails this small (pixels per side) are enlarged without smoothing; larger ones smoothly."""


def write_report(run: Run, path: str | Path, *, n: int = 8) -> Path:
    """Write the report of ``run`` to ``path`` (an ``.html`` file; its folder is created).

    ``n`` samples are shown at each end of every component.
    """
    path = Path(path)
    if path.is_dir():
        raise EmbeddingExplorerError(f"path={str(path)!r} is a folder; give a file name such as report.html")
    document = render_report(run, n=n)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(document, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def render_report(run: Run, *, n: int = 8) -> str:
    """The report of ``run`` as one HTML document (a str)."""
    n = positive_int(n, "n")
    samples = Samples(run)
    sections = [layer_section(layer, i, n, samples) for i, layer in enumerate(run)]
    index = {layer.name: i for i, layer in enumerate(run)}
    nav = "".join(
        f'<a href="#layer-{i}">{esc(layer.name)}<span>{100 * float(np.sum(ratio)):.0f}%</span></a>'
        for i, (layer, ratio) in enumerate((layer, layer.explained_variance_ratio) for layer in run)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="embedding-explorer {esc(__version__)}">
<title>{esc(run.name)} · Embedding Explorer report</title>
<style>{STYLE}</style>
<style>{samples.style()}</style>
</head>
<body>
<header class="top">
<div class="brand">Embedding Explorer report</div>
<h1>{esc(run.name)}</h1>
<p class="facts">{facts(run)}</p>
<nav>{nav}</nav>
</header>
<main>
{insights_section(run, index)}
{"".join(sections)}
</main>
<footer>Made by embedding-explorer {esc(__version__)} on {datetime.now().astimezone():%Y-%m-%d %H:%M}.
Principal components of each layer's activations over the whole data set; scores are
<code>(activation − mean) · component</code>.</footer>
</body>
</html>
"""


def facts(run: Run) -> str:
    """One line: samples, model, creation date, layers."""
    model = run.manifest.get("model") or {}
    model_class = str(model.get("class") or "none (input space)")
    short = model_class.rsplit(".", 1)[-1]
    parameters = model.get("n_parameters")
    model_text = f'<span title="{esc(model_class)}">{esc(short)}</span>'
    if parameters:
        model_text += f" ({int(parameters):,} parameters)"
    labels = run.labels
    label_text = ""
    if labels is not None:
        label_text = f"<span>{pd.Series(labels).nunique():,} labels</span>"
    items = [
        f"<span><b>N</b> = {run.n_samples:,} samples</span>",
        f"<span><b>model</b> {model_text}</span>",
        f"<span><b>created</b> {esc(created(run))}</span>",
        f"<span>{len(run.layers)} layer{'s' if len(run.layers) != 1 else ''}</span>",
        label_text,
    ]
    return " ".join(item for item in items if item)


def insights_section(run: Run, index: dict[str, int]) -> str:
    """The run's findings (``run.insights()``), strongest first, each linking to its layer."""
    table = run.insights()
    if table.empty:
        items = '<li class="none">No finding passed the documented thresholds.</li>'
    else:
        items = "".join(
            f'<li><span class="strength" title="strength (0..1)">{row.strength:.2f}</span>'
            f'<span class="kind">{esc(str(row.kind).replace("_", " "))}</span> '
            + (
                f'<a href="#layer-{index[row.layer]}">{esc(row.sentence)}</a>'
                if row.layer in index
                else esc(row.sentence)
            )
            + "</li>"
            for row in table.itertuples(index=False)
        )
    head = '<h2><span class="name">Insights</span></h2>'
    return f'<section class="insights" id="insights">{head}<ol>{items}</ol></section>'


def created(run: Run) -> str:
    raw = str(run.manifest.get("created", ""))
    try:
        return f"{datetime.strptime(raw, '%Y-%m-%dT%H:%M:%S%z'):%Y-%m-%d %H:%M %Z}".strip()
    except ValueError:
        return raw or "unknown"


# ---- one layer -----------------------------------------------------------------------------------
def layer_section(layer: Layer, index: int, n: int, samples: Samples) -> str:
    ratio = layer.explained_variance_ratio
    method = "" if layer.pca_method == "covariance_eigh" else f" · {esc(layer.pca_method)}"
    head = (
        f'<h2><span class="name">{esc(layer.name)}</span>'
        f'<span class="meta">D = {layer.dim:,} · {layer.n_components} components · '
        f"{100 * ratio.sum():.1f}% of the variance{method}</span></h2>"
    )
    associations = association_table(layer)
    rows = "".join(component_row(layer, c, n, samples) for c in range(layer.n_components))
    return (
        f'<section class="layer" id="layer-{index}">{head}'
        f'<div class="overview"><figure class="panel chart"><figcaption>Variance per component</figcaption>'
        f"{variance_svg(ratio)}</figure>"
        f'<div class="panel assoc"><div class="caption">What the components go with</div>'
        f"{association_html(associations, layer)}</div></div>"
        f'<div class="caption gallery-caption">Extremes of each component: the {n} lowest and the {n} '
        "highest samples</div>"
        f'<div class="gallery {samples.layout}">{rows}</div></section>'
    )


def variance_svg(ratio: np.ndarray, width: int = 460, height: int = 210) -> str:
    """Bars of each component's share of the variance (left axis) and the cumulative share
    (line, right axis 0-100%), as inline SVG."""
    k = len(ratio)
    left, right, top, bottom = 40, 40, 14, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    if k == 0:
        return '<p class="empty">no components (the layer has no variance)</p>'
    peak = max(float(ratio.max()), 1e-12)
    step = nice_step(peak * 100) / 100
    top_value = step * np.ceil(peak / step)
    slot = plot_w / k
    digits = 0 if step >= 0.01 else 1  # a tick step of 1% or more needs no decimals
    bar = max(slot * 0.62, 1.0)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="variance per component">']
    for tick in np.arange(0, top_value + step / 2, step):
        y = top + plot_h * (1 - tick / top_value)
        parts.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + 3.5:.1f}" text-anchor="end">'
            f"{100 * tick:.{digits}f}%</text>"
        )
    for tick in (0, 0.5, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(
            f'<text class="axis cum" x="{left + plot_w + 6}" y="{y + 3.5:.1f}">{100 * tick:.0f}%</text>'
        )
    label_every = max(1, int(np.ceil(k / 12)))
    for c, r in enumerate(ratio):
        x = left + slot * c + (slot - bar) / 2
        h = plot_h * float(r) / top_value
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}">'
            f"<title>PC{c + 1}: {100 * r:.2f}% of the variance</title></rect>"
        )
        if c % label_every == 0:
            parts.append(
                f'<text class="axis" x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="middle">'
                f"{c + 1}</text>"
            )
    cumulative = np.cumsum(ratio)
    points = " ".join(
        f"{left + slot * (c + 0.5):.1f},{top + plot_h * (1 - float(v)):.1f}" for c, v in enumerate(cumulative)
    )
    parts.append(f'<polyline class="cum-line" points="{points}"/>')
    for c, v in enumerate(cumulative):
        parts.append(
            f'<circle class="cum-dot" cx="{left + slot * (c + 0.5):.1f}" '
            f'cy="{top + plot_h * (1 - float(v)):.1f}" '
            f'r="2.6"><title>PC1-{c + 1}: {100 * v:.1f}% cumulative</title></circle>'
        )
    parts.append(
        f'<line class="axis-line" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    parts.append("</svg>")
    legend = (
        '<div class="legend"><span class="key bar-key"></span>share of the layer\'s variance'
        '<span class="key cum-key"></span>cumulative (right axis)</div>'
    )
    return "".join(parts) + legend


def nice_step(peak_percent: float) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about four ticks up to the peak."""
    raw = peak_percent / 4
    power = 10 ** np.floor(np.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def association_html(table: pd.DataFrame, layer: Layer) -> str:
    """Components as rows, label/metadata columns as cells: the statistic and the summary,
    shaded by strength (eta2, or |r|)."""
    if table.empty:
        return '<p class="empty">The run has no labels or metadata to relate the components to.</p>'
    columns = list(dict.fromkeys(table["column"]))
    statistic = {c: table.loc[table["column"] == c, "statistic"].iloc[0] for c in columns}
    head = "".join(
        f"<th>{esc(c)} <small>{'η²' if statistic[c] == 'eta2' else 'r'}</small></th>" for c in columns
    )
    by_cell = {(row.component, row.column): row for row in table.itertuples(index=False)}
    rows = []
    for c, name in enumerate(layer.component_names):
        cells = []
        for column in columns:
            row = by_cell.get((name, column))
            if row is None:
                cells.append("<td></td>")
                continue
            value = float(row.value)
            strength = 0.0 if not np.isfinite(value) else min(abs(value), 1.0)
            shown = f"{value:.2f}" if row.statistic == "eta2" else f"{value:+.2f}"
            note = "" if row.statistic == "r" else f'<div class="summary">{esc(str(row.summary))}</div>'
            cells.append(f'<td style="--s:{strength:.3f}"><span class="stat">{shown}</span>{note}</td>')
        ratio = 100 * float(layer.explained_variance_ratio[c])
        rows.append(f'<tr><th class="pc">{esc(name)} <small>{ratio:.1f}%</small></th>{"".join(cells)}</tr>')
    body = "".join(rows)
    return (
        f'<div class="table-wrap"><table><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def component_row(layer: Layer, c: int, n: int, samples: Samples) -> str:
    low, high = layer.extremes(c, n)
    scores = layer.scores[:, c]
    ratio = 100 * float(layer.explained_variance_ratio[c])
    ends = "".join(
        f'<div class="end {end}"><div class="end-head"><span class="end-name">{title}</span>'
        f"{samples.makeup(ids)}</div>"
        f'<div class="strip">{"".join(samples.tile(int(i), float(scores[i])) for i in ids)}</div></div>'
        for end, title, ids in (("low", "lowest", low), ("high", "highest", high))
    )
    return (
        f'<div class="component"><div class="pc-head"><b>{esc(layer.component_names[c])}</b>'
        f"<span>{ratio:.1f}%</span></div>{ends}</div>"
    )


# ---- samples -------------------------------------------------------------------------------------
class Samples:
    """How samples are shown: thumbnails (each embedded once), text snippets, or their ids."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.kind = run.rendering_kind
        labels = label_column(run)
        self.labels = None if labels is None else labels.to_numpy()
        self._images: dict[int, str] = {}
        self.layout = {IMAGE: "images", TEXT: "texts"}.get(self.kind or "", "ids")
        table = run.samples
        per_token = {"text_id", "token"} <= set(table.columns)
        # a per-token run: each token is shown in a window of its text, ends by their tokens
        self.text_ids = table["text_id"].to_numpy() if per_token else None
        self.tokens = [str(t) for t in table["token"]] if per_token else None

    def label(self, sample_id: int) -> str | None:
        if self.labels is None:
            return None
        value = self.labels[sample_id]
        return None if pd.isna(value) else str(value)

    def makeup(self, ids: np.ndarray) -> str:
        """The dominant labels among ``ids``: ``7/8 Sandal · 1 Sneaker``; in a per-token run the
        dominant tokens: ``9/16 'not' · 3 'no'``."""
        if self.tokens is not None:
            counts = Counter(self.tokens[int(i)] for i in ids).most_common(2)
            first = f"<b>{counts[0][1]}/{len(ids)}</b> {esc(repr(counts[0][0]))}"
            rest = f" · {counts[1][1]} {esc(repr(counts[1][0]))}" if len(counts) > 1 else ""
            return f'<span class="makeup">{first}{rest}</span>'
        if self.labels is None:
            return ""
        counts = Counter(self.label(int(i)) or "missing" for i in ids).most_common(2)
        first = f"<b>{counts[0][1]}/{len(ids)}</b> {esc(counts[0][0])}"
        rest = f" · {counts[1][1]} {esc(counts[1][0])}" if len(counts) > 1 else ""
        return f'<span class="makeup">{first}{rest}</span>'

    def tile(self, sample_id: int, score: float) -> str:
        label = self.label(sample_id)
        tip = f"#{sample_id}" + (f" · {label}" if label is not None else "") + f" · score {score:.3g}"
        caption = f'<span class="cap">{esc(label)}</span>' if label is not None else ""
        record = self.run.rendering(sample_id) if self.kind in (IMAGE, TEXT) else None
        if record is not None and self.kind == IMAGE:
            self._images.setdefault(sample_id, base64.b64encode(record).decode("ascii"))
            small = " px" if max(png_size(record)) <= PIXELATED_UP_TO else ""  # crisp when enlarged
            return (
                f'<figure class="tile" title="{esc(tip)}"><i class="img{small} s{sample_id}" role="img" '
                f'aria-label="{esc(tip)}"></i>{caption}</figure>'
            )
        if record is not None and self.kind == TEXT:
            text = record.decode("utf-8", errors="replace")
            snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"
            shown = esc(snippet) if self.tokens is None else self.token_window(sample_id)
            full = text[:TOOLTIP_CHARS]
            return (
                f'<figure class="snippet" title="{esc(tip)}&#10;&#10;{esc(full)}">{caption}'
                f'<span class="text">{shown}</span></figure>'
            )
        return f'<figure class="chip" title="{esc(tip)}"><span>#{sample_id}</span>{caption}</figure>'

    def token_window(self, sample_id: int, window: int = TOKEN_WINDOW) -> str:
        """A token sample within ``window`` tokens of its text each side, the token in <mark>."""
        text_ids, tokens = self.text_ids, self.tokens
        if text_ids is None or tokens is None:
            return ""
        text_id = text_ids[sample_id]
        first = int(np.searchsorted(text_ids, text_id, "left"))
        stop = int(np.searchsorted(text_ids, text_id, "right"))
        lo, hi = max(first, sample_id - window), min(stop, sample_id + window + 1)
        own_spaces = any(t[:1].isspace() for t in tokens[lo:hi])
        parts = ["…" if lo > first else ""]
        for i in range(lo, hi):
            token = tokens[i]
            if own_spaces or (token.startswith("##") and len(token) > 2):
                token, gap = (token if own_spaces else token[2:]), ""
            else:
                gap = " " if i > lo else ""
            shown = f"<mark>{esc(token)}</mark>" if i == sample_id else esc(token)
            parts.append(gap + shown)
        parts.append("…" if hi < stop else "")
        return "".join(parts)

    def style(self) -> str:
        """One CSS rule per embedded thumbnail."""
        return "\n".join(
            f".s{i}{{background-image:url(data:image/png;base64,{data})}}"
            for i, data in sorted(self._images.items())
        )


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def esc(text: str) -> str:
    return html.escape(text, quote=True)
