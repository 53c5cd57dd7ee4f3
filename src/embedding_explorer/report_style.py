"""The inline CSS of the HTML report (:mod:`.report`): the UI's palette, light and dark."""

from __future__ import annotations

STYLE = """
:root {
  --font: system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Helvetica Neue', Arial, sans-serif;
  --mono: ui-monospace, 'SFMono-Regular', 'DejaVu Sans Mono', Menlo, Consolas, monospace;
  --bg: #f4f5f8; --panel: #ffffff; --sunken: #eef0f4; --border: #e1e4ea; --border-strong: #cdd2db;
  --text: #1b2130; --muted: #5f6b7e; --faint: #8b95a5;
  --accent: #4f6bed; --accent-soft: #e6eafd; --accent-text: #3449b8;
  --high: #b4430e; --high-soft: #fdebdf; --low: #1f5fbf; --low-soft: #e2ecfb;
  --thumb-bg: #0d0f14; --heat: 79, 107, 237; --cum: #b4430e;
  --shadow: 0 1px 2px rgba(16, 24, 40, 0.06), 0 1px 3px rgba(16, 24, 40, 0.08);
  --thumb: 56px;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1117; --panel: #161a22; --sunken: #11151c; --border: #262c38; --border-strong: #353d4c;
    --text: #e4e7ee; --muted: #9aa4b5; --faint: #6e7889;
    --accent: #7b92ff; --accent-soft: #232b4a; --accent-text: #a9b8ff;
    --high: #ff9b6a; --high-soft: #3a2418; --low: #7fb0ff; --low-soft: #19263d;
    --thumb-bg: #000; --heat: 123, 146, 255; --cum: #ff9b6a; --shadow: 0 1px 2px rgba(0, 0, 0, 0.4);
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; font-family: var(--font); font-size: 13px; line-height: 1.45; color: var(--text);
  background: var(--bg); -webkit-font-smoothing: antialiased;
}
header.top {
  background: var(--panel); border-bottom: 1px solid var(--border); padding: 20px 32px 0;
}
.brand {
  color: var(--accent-text); font-weight: 600; font-size: 12px; letter-spacing: .06em;
  text-transform: uppercase;
}
h1 { margin: 4px 0 6px; font-size: 24px; font-weight: 650; }
.facts { margin: 0 0 14px; color: var(--muted); display: flex; flex-wrap: wrap; gap: 6px 18px; }
.facts b { color: var(--text); font-weight: 600; }
nav { display: flex; flex-wrap: wrap; gap: 4px; padding-bottom: 12px; }
nav a {
  color: var(--text); text-decoration: none; padding: 4px 10px; border: 1px solid var(--border);
  border-radius: 999px; background: var(--sunken); font-size: 12px;
}
nav a span { color: var(--faint); margin-left: 6px; }
nav a:hover { border-color: var(--accent); color: var(--accent-text); }
main { padding: 8px 32px 24px; max-width: 1480px; }
section.layer { margin: 22px 0 34px; }
section.insights ol { list-style: none; margin: 8px 0 0; padding: 0; }
section.insights li {
  display: flex; gap: 10px; align-items: baseline; padding: 5px 0; border-bottom: 1px solid var(--border);
}
section.insights .strength { font-family: var(--mono); color: var(--muted); min-width: 3em; }
section.insights .kind { font-size: 12px; color: var(--muted); min-width: 9em; }
h2 {
  display: flex; align-items: baseline; gap: 14px; flex-wrap: wrap; margin: 0 0 12px; font-size: 18px;
  padding-bottom: 6px; border-bottom: 2px solid var(--border);
}
h2 .name { font-family: var(--mono); font-weight: 650; }
h2 .meta { font-size: 13px; font-weight: 400; color: var(--muted); }
.panel {
  background: var(--panel); border: 1px solid var(--border); border-radius: 8px; box-shadow: var(--shadow);
  padding: 12px 14px; margin: 0;
}
.overview {
  display: grid; grid-template-columns: minmax(320px, 480px) minmax(0, 1fr); gap: 14px;
  align-items: start;
}
@media (max-width: 900px) { .overview { grid-template-columns: 1fr; } }
figcaption, .caption { font-weight: 600; font-size: 12px; color: var(--muted); margin-bottom: 6px; }
.gallery-caption { margin: 18px 0 8px; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .grid { stroke: var(--border); stroke-width: 1; }
.chart .axis-line { stroke: var(--border-strong); stroke-width: 1; }
.chart .axis { fill: var(--muted); font-size: 10.5px; font-family: var(--font); }
.chart .axis.cum { fill: var(--cum); }
.chart .bar { fill: var(--accent); opacity: .85; }
.chart .cum-line { fill: none; stroke: var(--cum); stroke-width: 1.8; }
.chart .cum-dot { fill: var(--panel); stroke: var(--cum); stroke-width: 1.5; }
.legend {
  display: flex; align-items: center; gap: 6px; font-size: 11px; color: var(--muted);
  margin-top: 4px;
}
.legend .key { display: inline-block; width: 14px; height: 8px; border-radius: 2px; margin-left: 10px; }
.legend .key:first-child { margin-left: 0; }
.legend .bar-key { background: var(--accent); }
.legend .cum-key { height: 2px; background: var(--cum); }
.table-wrap { overflow-x: auto; }
table { border-collapse: separate; border-spacing: 2px; width: 100%; font-size: 12px; }
thead th { text-align: left; font-weight: 600; color: var(--muted); padding: 2px 8px; white-space: nowrap; }
thead th small { color: var(--faint); font-weight: 400; }
th.pc { text-align: left; white-space: nowrap; padding: 4px 8px; font-weight: 600; }
th.pc small { color: var(--faint); font-weight: 400; margin-left: 4px; }
td {
  padding: 4px 8px; border-radius: 4px; vertical-align: top; min-width: 64px;
  background: rgba(var(--heat), calc(var(--s) * 0.55));
}
td .stat { font-family: var(--mono); font-weight: 600; }
td .summary { color: var(--text); font-size: 11.5px; opacity: .85; }
.gallery { display: flex; flex-direction: column; gap: 8px; }
.component {
  display: grid; grid-template-columns: 84px minmax(0, 1fr) minmax(0, 1fr); gap: 10px;
  background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 8px 10px;
  box-shadow: var(--shadow); break-inside: avoid;
}
.gallery.texts .component { grid-template-columns: 84px minmax(0, 1fr) minmax(0, 1fr); }
.pc-head { display: flex; flex-direction: column; justify-content: center; gap: 2px; }
.pc-head b { font-size: 15px; }
.pc-head span { color: var(--muted); font-size: 12px; }
.end { border-radius: 6px; padding: 6px 8px; min-width: 0; }
.end.low { background: var(--low-soft); }
.end.high { background: var(--high-soft); }
.end-head {
  display: flex; justify-content: space-between; gap: 8px; font-size: 11.5px; margin-bottom: 5px;
}
.end-name { font-weight: 650; text-transform: uppercase; letter-spacing: .04em; font-size: 10.5px; }
.end.low .end-name { color: var(--low); }
.end.high .end-name { color: var(--high); }
.makeup { color: var(--text); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.strip { display: flex; flex-wrap: wrap; gap: 4px; }
figure { margin: 0; }
.tile { width: var(--thumb); display: flex; flex-direction: column; align-items: center; }
.tile .img {
  display: block; width: var(--thumb);
  height: var(--thumb); border-radius: 4px; background-color: var(--thumb-bg);
  background-size: contain; background-repeat: no-repeat; background-position: center;
}
.tile .img.px { image-rendering: pixelated; }
.tile .cap, .chip .cap {
  font-size: 9.5px; color: var(--muted); max-width: 100%; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; margin-top: 1px;
}
.gallery.texts .strip { flex-direction: column; flex-wrap: nowrap; gap: 3px; }
.snippet {
  background: var(--panel); border-radius: 4px; padding: 3px 6px; font-size: 11.5px; line-height: 1.35;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden;
}
.snippet .cap {
  font-size: 10px; color: var(--accent-text); background: var(--accent-soft); border-radius: 3px;
  padding: 0 4px; margin-right: 5px; font-weight: 600;
}
.chip {
  display: flex; flex-direction: column; align-items: center; justify-content: center; min-width: 52px;
  background: var(--panel); border-radius: 4px; padding: 3px 6px; font-family: var(--mono); font-size: 11px;
}
.empty { color: var(--muted); margin: 4px 0; }
footer {
  color: var(--faint); font-size: 11.5px; padding: 10px 32px 28px;
  border-top: 1px solid var(--border);
}
code { font-family: var(--mono); }
@media print {
  body { background: #fff; }
  .panel, .component { box-shadow: none; }
  nav { display: none; }
}
"""
