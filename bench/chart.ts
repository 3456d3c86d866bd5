/**
 * The ratio chart, as hand-written SVG (no dependency): one panel per o2fuse
 * transport, one group of horizontal bars per report row, one bar per
 * baseline. The axis is logarithmic and bars grow from 1.0 (parity): right
 * of the line o2fuse is faster, left of it slower.
 */

export interface ChartBar {
  series: string;
  /** o2fuse / baseline; undefined when either side has no number. */
  ratio?: number;
  /** Shown instead of a bar (FAILED, n/a). */
  text?: string;
}

export interface ChartGroup {
  label: string;
  bars: ChartBar[];
}

export interface ChartPanel {
  title: string;
  groups: ChartGroup[];
}

const RATIO_MIN = 0.01;
const RATIO_MAX = 10;
const WIDTH = 980;
const LABEL_W = 300;
const PLOT_X0 = LABEL_W + 10;
const PLOT_X1 = WIDTH - 70;
const BAR_H = 11;
const GROUP_GAP = 8;
const PANEL_HEAD = 34;
const LEGEND_H = 30;
const AXIS_H = 26;
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function xOf(ratio: number): number {
  const r = Math.min(RATIO_MAX, Math.max(RATIO_MIN, ratio));
  const t = (Math.log10(r) - Math.log10(RATIO_MIN)) / (Math.log10(RATIO_MAX) - Math.log10(RATIO_MIN));
  return PLOT_X0 + t * (PLOT_X1 - PLOT_X0);
}

function fmtRatio(r: number): string {
  return r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r >= 0.1 ? r.toFixed(2) : r.toFixed(3);
}

export function ratioChartSvg(panels: ChartPanel[], subtitle: string): string {
  const series = [...new Set(panels.flatMap((p) => p.groups.flatMap((g) => g.bars.map((b) => b.series))))];
  const color = (s: string) => PALETTE[series.indexOf(s) % PALETTE.length];
  const out: string[] = [];
  let y = 40;
  const body: string[] = [];
  for (const panel of panels) {
    body.push(`<text x="10" y="${y + 18}" font-size="15" font-weight="bold">${esc(panel.title)}</text>`);
    y += PANEL_HEAD;
    const top = y;
    for (const group of panel.groups) {
      const h = group.bars.length * BAR_H;
      body.push(`<text x="${LABEL_W}" y="${y + h / 2 + 4}" font-size="12" text-anchor="end">${esc(group.label)}</text>`);
      for (const bar of group.bars) {
        if (bar.ratio !== undefined && Number.isFinite(bar.ratio) && bar.ratio > 0) {
          const x1 = xOf(1);
          const x2 = xOf(bar.ratio);
          const clipped = bar.ratio < RATIO_MIN || bar.ratio > RATIO_MAX;
          body.push(`<rect x="${Math.min(x1, x2).toFixed(1)}" y="${y + 1}" width="${Math.max(1, Math.abs(x2 - x1)).toFixed(1)}" height="${BAR_H - 2}" fill="${color(bar.series)}"><title>${esc(`${group.label} vs ${bar.series}: ${fmtRatio(bar.ratio)}x`)}</title></rect>`);
          const tx = bar.ratio >= 1 ? x2 + 3 : x2 - 3;
          body.push(`<text x="${tx.toFixed(1)}" y="${y + BAR_H - 2}" font-size="9" text-anchor="${bar.ratio >= 1 ? 'start' : 'end'}" fill="#333">${clipped ? (bar.ratio < RATIO_MIN ? `&lt;${RATIO_MIN}` : `&gt;${RATIO_MAX}`) : fmtRatio(bar.ratio)}</text>`);
        } else {
          body.push(`<text x="${xOf(1) + 3}" y="${y + BAR_H - 2}" font-size="9" fill="${bar.text === 'FAILED' ? '#c00' : '#888'}">${esc(`${bar.series}: ${bar.text ?? 'n/a'}`)}</text>`);
        }
        y += BAR_H;
      }
      y += GROUP_GAP;
    }
    // axis: decades, the 0.8 target (passthrough, sequential) and parity
    const bottom = y;
    for (const tick of [0.01, 0.03, 0.1, 0.3, 1, 3, 10]) {
      const x = xOf(tick);
      body.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${bottom}" stroke="${tick === 1 ? '#000' : '#ddd'}" stroke-width="${tick === 1 ? 1.5 : 1}"/>`);
      body.push(`<text x="${x}" y="${bottom + 14}" font-size="10" text-anchor="middle">${tick}×</text>`);
    }
    const x08 = xOf(0.8);
    body.push(`<line x1="${x08}" y1="${top - 4}" x2="${x08}" y2="${bottom}" stroke="#999" stroke-dasharray="3,3"/>`);
    body.push(`<text x="${x08 - 2}" y="${top - 6}" font-size="9" text-anchor="end" fill="#666">0.8×</text>`);
    y = bottom + AXIS_H;
  }
  // legend
  let lx = 10;
  const legend: string[] = [];
  for (const s of series) {
    legend.push(`<rect x="${lx}" y="${y + 4}" width="12" height="12" fill="${color(s)}"/>`);
    legend.push(`<text x="${lx + 16}" y="${y + 14}" font-size="12">o2fuse / ${esc(s)}</text>`);
    lx += 40 + 7 * (s.length + 9);
  }
  y += LEGEND_H;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="sans-serif">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="10" y="20" font-size="16" font-weight="bold">o2fuse / baseline (medians; log scale; right of 1× = o2fuse faster)</text>`);
  out.push(`<text x="10" y="34" font-size="11" fill="#555">${esc(subtitle)}</text>`);
  out.push(...body, ...legend, '</svg>');
  return `${out.join('\n')}\n`;
}
