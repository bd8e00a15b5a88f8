/**
 * The report as one self-contained HTML page: the update curve (devices per state over time,
 * stacked, as inline SVG) and the report's tables. No script, no stylesheet or font from
 * elsewhere: the file opens offline in any browser.
 */
import type { FleetReport } from './report.js';

/** Stacking order, bottom to top, and colour of each state. */
const STATE_COLOURS: readonly [string, string][] = [
  ['committed', '#2e7d32'],
  ['rolled_back', '#f9a825'],
  ['failed', '#c62828'],
  ['vanished', '#6d4c41'],
  ['trial', '#00838f'],
  ['rebooting', '#4dd0e1'],
  ['installing', '#5c6bc0'],
  ['downloaded', '#7986cb'],
  ['verifying', '#9575cd'],
  ['downloading', '#42a5f5'],
  ['checking', '#90caf9'],
  ['idle', '#cfd8dc'],
  ['booting', '#b0bec5'],
  ['offline', '#78909c'],
];

const WIDTH = 900;
const HEIGHT = 360;
const PAD = { left: 56, right: 16, top: 16, bottom: 40 };

export function renderHtml(report: FleetReport): string {
  const title = `Fetchback fleet run: ${report.devices} devices`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse}td,th{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
svg text{font:11px system-ui,sans-serif;fill:#444}
</style></head><body>
<h1>${esc(title)}</h1>
<p>Server ${esc(report.server)}, started ${esc(report.startedAt)}, ran ${seconds(report.durationMs)}.
Faults: ${esc(pairs(report.faults) || 'none')}.</p>
<h2>Update curve</h2>
${chart(report)}
<div class="legend">${legend(report)}</div>
<h2>Time to commit</h2>
${table(
  ['share of the fleet', 'time'],
  [
    ['50 %', seconds(report.timeToCommit.p50Ms)],
    ['90 %', seconds(report.timeToCommit.p90Ms)],
    ['100 %', seconds(report.timeToCommit.p100Ms)],
    ['100 % of those expected to commit', seconds(report.timeToCommitExpected.p100Ms)],
  ],
)}
<h2>Final states</h2>
${countTable(report.finalStates, 'state')}
${report.serverStates ? `<h2>States reported by the server</h2>${countTable(report.serverStates, 'state')}` : ''}
<h2>Failures by code</h2>
${countTable(report.failuresByCode, 'code')}
<h2>Faults injected</h2>
${countTable(report.faultsInjected, 'fault')}
<h2>Bytes</h2>
${table(
  ['', 'bytes'],
  [
    ['delivered to devices', report.bytes.delivered.toLocaleString('en')],
    ['minimum (image size × devices assigned)', report.bytes.minimum.toLocaleString('en')],
    ['ratio', report.bytes.ratio === null ? 'n/a' : report.bytes.ratio.toFixed(3)],
  ],
)}
</body></html>
`;
}

function chart(report: FleetReport): string {
  const samples = report.timeline;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const endMs = Math.max(1, samples[samples.length - 1]?.tMs ?? 1);
  const maxDevices = Math.max(1, report.devices);
  const x = (tMs: number) => PAD.left + (tMs / endMs) * plotW;
  const y = (n: number) => PAD.top + plotH - (n / maxDevices) * plotH;

  const layers: string[] = [];
  const below = samples.map(() => 0);
  for (const [state, colour] of STATE_COLOURS) {
    const values = samples.map((s) => s.states[state] ?? 0);
    if (values.every((v) => v === 0)) continue;
    const top = values.map((v, i) => (below[i] as number) + v);
    const upper = samples.map((s, i) => `${x(s.tMs).toFixed(1)},${y(top[i] as number).toFixed(1)}`);
    const lower = samples
      .map((s, i) => `${x(s.tMs).toFixed(1)},${y(below[i] as number).toFixed(1)}`)
      .reverse();
    layers.push(
      `<polygon fill="${colour}" points="${[...upper, ...lower].join(' ')}"><title>${state}</title></polygon>`,
    );
    top.forEach((v, i) => (below[i] = v));
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="100%" role="img" aria-label="devices per state over time">
${layers.join('\n')}
${axes(endMs, maxDevices, x, y)}
</svg>`;
}

function axes(
  endMs: number,
  maxDevices: number,
  x: (tMs: number) => number,
  y: (n: number) => number,
): string {
  const parts = [
    `<line x1="${PAD.left}" y1="${y(0)}" x2="${WIDTH - PAD.right}" y2="${y(0)}" stroke="#444"/>`,
    `<line x1="${PAD.left}" y1="${y(0)}" x2="${PAD.left}" y2="${PAD.top}" stroke="#444"/>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const t = (endMs * i) / 5;
    parts.push(
      `<text x="${x(t)}" y="${y(0) + 16}" text-anchor="middle">${(t / 1000).toFixed(1)} s</text>`,
    );
    const n = Math.round((maxDevices * i) / 5);
    parts.push(`<text x="${PAD.left - 6}" y="${y(n) + 4}" text-anchor="end">${n}</text>`);
  }
  parts.push(
    `<text x="${PAD.left + (WIDTH - PAD.left - PAD.right) / 2}" y="${HEIGHT - 6}" text-anchor="middle">time since start</text>`,
  );
  return parts.join('\n');
}

function legend(report: FleetReport): string {
  const seen = new Set(report.timeline.flatMap((s) => Object.keys(s.states)));
  return STATE_COLOURS.filter(([state]) => seen.has(state))
    .map(([state, colour]) => `<span><i style="background:${colour}"></i>${state}</span>`)
    .join('');
}

function countTable(counts: Readonly<Record<string, number>>, label: string): string {
  const rows = Object.entries(counts).sort(([, a], [, b]) => b - a);
  if (rows.length === 0) return '<p>none</p>';
  return table(
    [label, 'devices'],
    rows.map(([k, v]) => [k, String(v)]),
  );
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${i > 0 ? ' class="n"' : ''}>${esc(c)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function seconds(ms: number | null): string {
  return ms === null ? 'not reached' : `${(ms / 1000).toFixed(1)} s`;
}

function pairs(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
