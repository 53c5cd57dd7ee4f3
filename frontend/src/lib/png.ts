/**
 * PNG downloads of what a card shows, drawn in the browser: an SVG chart is rasterised with its
 * computed styles inlined (so CSS variables and theme colours survive); any other element is
 * redrawn on a canvas from its layout: backgrounds, borders, images, inline SVGs and text.
 *
 * The pure helpers (names, scale, colours, wrapping) are tested with vitest; the drawing is
 * tested in a real browser (tests/test_browser_export.py).
 */

/** `fashion-cnn/fc: PC 1` -> `fashion-cnn-fc-pc-1.png`. */
export function pngFileName(name: string): string {
  const base = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  return `${base || 'chart'}.png`;
}

/** Device pixels per CSS pixel: 2 (crisp on any screen) unless the image would exceed `maxPixels`. */
export function captureScale(width: number, height: number, maxPixels = 24_000_000, preferred = 2): number {
  if (width <= 0 || height <= 0) return preferred;
  return Math.max(0.25, Math.min(preferred, Math.sqrt(maxPixels / (width * height))));
}

/** Whether a computed CSS colour paints nothing (`transparent`, alpha 0). */
export function isTransparent(color: string | null | undefined): boolean {
  if (!color) return true;
  const c = color.trim().toLowerCase();
  if (c === 'transparent' || c === 'none') return true;
  const m = /^rgba?\(([^)]*)\)$/.exec(c);
  if (!m) return false;
  const parts = m[1].split(/[\s,/]+/).filter(Boolean);
  if (parts.length < 4) return false;
  const alpha = parts[3].endsWith('%') ? parseFloat(parts[3]) / 100 : parseFloat(parts[3]);
  return alpha === 0;
}

/**
 * Words of `text` laid out into lines no wider than `widths[i]` (the i-th line's width; the last
 * width repeats). A word wider than its line gets a line of its own.
 */
export function wrapLines(text: string, widths: readonly number[], measure: (s: string) => number): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    const max = widths[Math.min(lines.length, widths.length - 1)] ?? Infinity;
    const next = line ? `${line} ${w}` : w;
    if (line && measure(next) > max + 0.5) {
      lines.push(line);
      line = w;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/** The rotation (radians) of a computed CSS transform, `matrix(a, b, c, d, e, f)`; 0 for none. */
export function rotationOf(transform: string | null | undefined): number {
  const m = /^matrix\(([^)]*)\)$/.exec((transform ?? '').trim());
  if (!m) return 0;
  const [a, b] = m[1].split(',').map((v) => parseFloat(v));
  if (!Number.isFinite(a) || !Number.isFinite(b)) return 0;
  const angle = Math.atan2(b, a);
  return Math.abs(angle) < 1e-6 ? 0 : angle;
}

/** SVG presentation properties copied from computed styles into the rasterised copy. */
export const SVG_STYLE_PROPS = [
  'fill',
  'fill-opacity',
  'stroke',
  'stroke-width',
  'stroke-opacity',
  'stroke-dasharray',
  'stroke-linecap',
  'opacity',
  'font-family',
  'font-size',
  'font-weight',
  'font-style',
  'text-anchor',
  'dominant-baseline',
  'visibility',
  'display',
] as const;

// ---- drawing (browser only) -------------------------------------------------------------------

/**
 * Canvases whose pixels are not readable by drawImage (WebGL without a preserved buffer, e.g.
 * the scatter) register how to read them here.
 */
export const canvasExporters = new WeakMap<HTMLCanvasElement, () => ImageData | Promise<ImageData>>();

async function readableCanvas(el: HTMLCanvasElement): Promise<CanvasImageSource> {
  const exporter = canvasExporters.get(el);
  if (!exporter) return el;
  const data = await exporter();
  const copy = document.createElement('canvas');
  copy.width = data.width;
  copy.height = data.height;
  copy.getContext('2d')?.putImageData(data, 0, 0);
  return copy;
}

/** The first non-transparent background at or above `el` (the page's panel colour by default). */
function backgroundOf(el: Element): string {
  for (let e: Element | null = el; e; e = e.parentElement) {
    const bg = getComputedStyle(e).backgroundColor;
    if (!isTransparent(bg)) return bg;
  }
  return getComputedStyle(document.documentElement).getPropertyValue('--bg-panel').trim() || '#ffffff';
}

/** A standalone copy of an inline SVG, its computed styles inlined. */
export function standaloneSvg(svg: SVGSVGElement): string {
  const copy = svg.cloneNode(true) as SVGSVGElement;
  const originals = [svg, ...Array.from(svg.querySelectorAll('*'))];
  const copies = [copy, ...Array.from(copy.querySelectorAll('*'))];
  originals.forEach((el, i) => {
    const cs = getComputedStyle(el);
    const style = SVG_STYLE_PROPS.map((p) => `${p}:${cs.getPropertyValue(p)}`).join(';');
    (copies[i] as SVGElement).setAttribute('style', style);
  });
  const { width, height } = svg.getBoundingClientRect();
  copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  copy.setAttribute('width', String(width));
  copy.setAttribute('height', String(height));
  return new XMLSerializer().serializeToString(copy);
}

function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('could not draw an image of the chart'));
    img.src = src;
  });
}

async function svgImage(svg: SVGSVGElement): Promise<HTMLImageElement> {
  const text = standaloneSvg(svg);
  return loadImage(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`);
}

function visible(el: Element, cs: CSSStyleDeclaration): boolean {
  return cs.display !== 'none' && cs.visibility !== 'hidden' && parseFloat(cs.opacity || '1') > 0.05 && !(el as HTMLElement).dataset?.pngSkip;
}

function drawBorders(ctx: CanvasRenderingContext2D, cs: CSSStyleDeclaration, x: number, y: number, w: number, h: number) {
  const sides: [string, (t: number) => [number, number, number, number]][] = [
    ['Top', (t) => [x, y, w, t]],
    ['Bottom', (t) => [x, y + h - t, w, t]],
    ['Left', (t) => [x, y, t, h]],
    ['Right', (t) => [x + w - t, y, t, h]],
  ];
  for (const [side, box] of sides) {
    const width = parseFloat(cs.getPropertyValue(`border-${side.toLowerCase()}-width`));
    const color = cs.getPropertyValue(`border-${side.toLowerCase()}-color`);
    const style = cs.getPropertyValue(`border-${side.toLowerCase()}-style`);
    if (width > 0 && style !== 'none' && !isTransparent(color)) {
      ctx.fillStyle = color;
      ctx.fillRect(...box(width));
    }
  }
}

function drawText(ctx: CanvasRenderingContext2D, node: Text, origin: DOMRect) {
  const parent = node.parentElement;
  const text = (node.textContent ?? '').replace(/\s+/g, ' ').trim();
  if (!parent || !text) return;
  const cs = getComputedStyle(parent);
  if (!visible(parent, cs) || isTransparent(cs.color)) return;
  const range = document.createRange();
  range.selectNodeContents(node);
  const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0 && r.height > 0);
  range.detach();
  if (!rects.length) return;
  ctx.save();
  ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  ctx.fillStyle = cs.color;
  ctx.textBaseline = 'middle';
  if (cs.overflow !== 'visible') {
    const box = parent.getBoundingClientRect();
    ctx.beginPath();
    ctx.rect(box.left - origin.left, box.top - origin.top, box.width, box.height);
    ctx.clip();
  }
  const angle = rotationOf(cs.transform);
  if (angle !== 0) {
    // rotated text (an axis title): one line, drawn about the centre of its box
    const r = rects[0];
    ctx.translate(r.left - origin.left + r.width / 2, r.top - origin.top + r.height / 2);
    ctx.rotate(angle);
    ctx.textAlign = 'center';
    ctx.fillText(text, 0, 0);
    ctx.restore();
    return;
  }
  const lines = rects.length === 1 ? [text] : wrapLines(text, rects.map((r) => r.width), (s) => ctx.measureText(s).width);
  lines.slice(0, rects.length).forEach((line, i) => {
    const r = rects[i];
    let shown = line;
    if (cs.textOverflow === 'ellipsis' && ctx.measureText(shown).width > r.width + 1) {
      while (shown.length > 1 && ctx.measureText(`${shown}…`).width > r.width) shown = shown.slice(0, -1);
      shown = `${shown}…`;
    }
    ctx.fillText(shown, r.left - origin.left, r.top - origin.top + r.height / 2);
  });
  ctx.restore();
}

async function drawElement(ctx: CanvasRenderingContext2D, el: Element, origin: DOMRect): Promise<void> {
  const cs = getComputedStyle(el);
  if (!visible(el, cs)) return;
  const r = el.getBoundingClientRect();
  const x = r.left - origin.left;
  const y = r.top - origin.top;
  if (r.width > 0 && r.height > 0) {
    if (!isTransparent(cs.backgroundColor)) {
      ctx.fillStyle = cs.backgroundColor;
      const radius = parseFloat(cs.borderTopLeftRadius) || 0;
      ctx.beginPath();
      if (radius > 0 && typeof ctx.roundRect === 'function') ctx.roundRect(x, y, r.width, r.height, Math.min(radius, r.width / 2, r.height / 2));
      else ctx.rect(x, y, r.width, r.height);
      ctx.fill();
    }
    drawBorders(ctx, cs, x, y, r.width, r.height);
  }
  if (el instanceof HTMLImageElement) {
    if (el.complete && el.naturalWidth > 0) {
      ctx.imageSmoothingEnabled = false; // thumbnails are small: keep their pixels sharp
      ctx.drawImage(el, x, y, r.width, r.height);
      ctx.imageSmoothingEnabled = true;
    }
    return;
  }
  if (el instanceof SVGSVGElement) {
    if (r.width > 0 && r.height > 0) ctx.drawImage(await svgImage(el), x, y, r.width, r.height);
    return;
  }
  if (el instanceof HTMLCanvasElement) {
    try {
      ctx.drawImage(await readableCanvas(el), x, y, r.width, r.height);
    } catch {
      /* a canvas we may not read: left out */
    }
    return;
  }
  if (el instanceof HTMLSelectElement) {
    const text = el.selectedOptions[0]?.textContent ?? '';
    ctx.save();
    ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    ctx.fillStyle = cs.color;
    ctx.textBaseline = 'middle';
    ctx.fillText(text, x + (parseFloat(cs.paddingLeft) || 4), y + r.height / 2);
    ctx.restore();
    return;
  }
  for (const child of Array.from(el.childNodes)) {
    if (child.nodeType === Node.TEXT_NODE) drawText(ctx, child as Text, origin);
    else if (child instanceof Element) await drawElement(ctx, child, origin);
  }
}

/** A PNG of `el` as it is shown now (an SVG element: the chart itself, rasterised). */
export async function elementToPng(el: Element): Promise<Blob> {
  const rect = el.getBoundingClientRect();
  const width = Math.max(1, Math.ceil(rect.width));
  const height = Math.max(1, Math.ceil(rect.height));
  const scale = captureScale(width, height);
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser cannot draw on a canvas');
  ctx.scale(scale, scale);
  ctx.fillStyle = backgroundOf(el);
  ctx.fillRect(0, 0, width, height);
  if (el instanceof SVGSVGElement) ctx.drawImage(await svgImage(el), 0, 0, width, height);
  else await drawElement(ctx, el, rect);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('could not encode the PNG'))), 'image/png'));
}

/** Save `blob` under `fileName` (the browser's download). */
export function downloadBlob(blob: Blob, fileName: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 2000);
}
