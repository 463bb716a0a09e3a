// The soak's analysis and output: slopes, the warm-up, the SVG plot and the Markdown tables.

/** Resolves after `ms`. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Least-squares slope of `ys` over `xs`. */
export function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * When RSS stopped warming up: the earliest sample time after which its peak rose by less than
 * the growth limit allows over the rest of the run (a leak never lets that happen before the end;
 * a heap or an allocator reaching its working size does, once). In seconds from the start.
 */
export function warmupEnd(ts, values, limitPerMinute) {
  const end = ts.at(-1);
  let peakBefore = -Infinity;
  const peakAfter = values.map((_, i) => Math.max(...values.slice(i)));
  for (let i = 0; i < values.length; i++) {
    peakBefore = Math.max(peakBefore, values[i]);
    if (peakAfter[i] - peakBefore < limitPerMinute * ((end - ts[i]) / 60)) return ts[i];
  }
  return end;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c"];

/** An SVG of RSS and descriptors over time, one line per server, hand-written (no dependency). */
export function plot(samples, servers, title) {
  const width = 760;
  const panel = { left: 60, right: 150, top: 40, height: 170, gap: 60 };
  const panels = [
    { key: "rss", label: "RSS (MiB)" },
    ...(samples[0]?.servers[servers[0]].rssLessYoung !== undefined
      ? [{ key: "rssLessYoung", label: "RSS less the young generation: what the verdict judges (MiB)" }]
      : []),
    ...(samples[0]?.servers[servers[0]].heapCommitted !== undefined
      ? [
        { key: "heapCommitted", label: "V8 heap committed (MiB)" },
        ...(samples[0]?.servers[servers[0]].newSpace !== undefined
          ? [{ key: "newSpace", label: "of which the young generation (new space, MiB)" }]
          : []),
        { key: "external", label: "V8 external memory: ArrayBuffers and the like (MiB)" },
      ]
      : []),
    { key: "fds", label: "open descriptors" },
  ].map((p, i) => ({ ...p, top: panel.top + i * (panel.height + panel.gap) }));
  const height = panel.top + panels.length * panel.height + (panels.length - 1) * panel.gap + 40;
  const tMax = Math.max(1, samples.at(-1)?.t ?? 1);
  const plotWidth = width - panel.left - panel.right;
  const x = (t) => panel.left + (t / tMax) * plotWidth;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  for (const { key, label, top } of panels) {
    const values = samples.flatMap((s) => servers.map((server) => s.servers[server][key])).filter(Number.isFinite);
    const vMax = niceCeiling(Math.max(1, ...values));
    const y = (v) => top + panel.height - (v / vMax) * panel.height;
    parts.push(
      `<rect x="${panel.left}" y="${top}" width="${plotWidth}" height="${panel.height}" fill="none" stroke="#999"/>`,
    );
    for (let i = 0; i <= 4; i++) {
      const v = (vMax * i) / 4;
      parts.push(
        `<line x1="${panel.left}" x2="${panel.left + plotWidth}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
        `<text x="${panel.left - 6}" y="${y(v) + 4}" text-anchor="end">${round(v, 1)}</text>`,
      );
    }
    for (let i = 0; i <= 5; i++) {
      const t = (tMax * i) / 5;
      parts.push(
        `<text x="${x(t)}" y="${top + panel.height + 14}" text-anchor="middle">${round(t / 60, 1)} min</text>`,
      );
    }
    // The warm-up boundary: the verdict looks at what comes after.
    parts.push(
      `<line x1="${x(tMax / 2)}" x2="${x(tMax / 2)}" y1="${top}" y2="${
        top + panel.height
      }" stroke="#bbb" stroke-dasharray="4 3"/>`,
      `<text x="${panel.left}" y="${top - 6}">${label}</text>`,
    );
    servers.forEach((server, i) => {
      const points = samples.filter((s) => Number.isFinite(s.servers[server][key]))
        .map((s) => `${round(x(s.t), 1)},${round(y(s.servers[server][key]), 1)}`).join(" ");
      parts.push(`<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${points}"/>`);
      parts.push(
        `<line x1="${width - panel.right + 12}" x2="${width - panel.right + 30}" y1="${top + 14 + i * 16}" y2="${
          top + 14 + i * 16
        }" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`,
        `<text x="${width - panel.right + 34}" y="${top + 18 + i * 16}">${escapeXml(server)}</text>`,
      );
    });
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function niceCeiling(v) {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= v) return step * magnitude;
  return 10 * magnitude;
}

export const round = (v, digits = 0) => Number(v.toFixed(digits));
const escapeXml = (s) => s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]);

export function heapTable(result, names) {
  const row = (name, what, m) =>
    m
      ? `| ${name} | ${what} | ${m.rss} | ${m.anon} | ${m.file} | ${m.heapUsed} / ${m.heapCommitted} | ${
        m.newSpace ?? "–"
      } / ${m.oldSpace ?? "–"} | ${m.external} |`
      : undefined;
  return [
    "| server | when | RSS | anonymous | file-backed | V8 heap used / committed | of it new / old space | V8 external |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...names.flatMap((name) => {
      const s = result.servers[name];
      const first = result.samples[0].servers[name];
      return [
        row(name, "first sample", first),
        row(name, "before the load, after a GC", s.heapBaseline),
        row(name, "load stopped", s.afterLoad.idle),
        row(name, "then a full GC", s.afterLoad.afterGc),
        row(name, "then malloc_trim(0)", s.afterLoad.afterTrim),
      ].filter(Boolean);
    }),
  ].join("\n");
}

export function summaryTable(result, names) {
  const t = result.totals;
  const young = names.every((name) => result.servers[name].youngMax !== undefined);
  const columns = [
    "server",
    "RSS first / max / last (MiB)",
    ...(young
      ? [
        "young generation first / max / last",
        "judged: RSS less it, first / max / last",
        "its warm-up ends (RSS's own)",
        "its slope after it",
        "its slope, 2nd half (not judged)",
      ]
      : ["RSS warm-up ends", "RSS slope after it", "RSS slope, 2nd half (not judged)"]),
    "fds first / max / last",
    "fd slope, 2nd half",
    "probe median / max (ms)",
    "log lines",
    "exit",
  ];
  const lines = [
    `### ${result.runtime}: ${result.minutes} min (${result.startedAt}), verdict: **${result.verdict}**`,
    "",
    `| ${columns.join(" | ")} |`,
    `|${" --- |".repeat(columns.length)}`,
    ...names.map((name) => {
      const s = result.servers[name];
      const growth = young
        ? `${s.youngFirst} / ${s.youngMax} / ${s.youngLast} | ${s.judgedFirst} / ${s.judgedMax} / ${s.judgedLast} | ${s.rssWarmupEndMin} min (${s.rawRssWarmupEndMin} min)`
        : `${s.rssWarmupEndMin} min`;
      return `| ${name} | ${s.rssFirst} / ${s.rssMax} / ${s.rssLast} | ${growth} | ${s.rssSlopeAfterWarmupMiBPerMin} MiB/min | ${s.rssSlopeMiBPerMin} MiB/min | ${s.fdsFirst} / ${s.fdsMax} / ${s.fdsLast} | ${s.fdSlopePerMin}/min | ${s.probeMedianMs} / ${s.probeMaxMs} | ${s.logLines} | ${s.exit} |`;
    }),
    "",
    `Traffic: ${t.pingpong} ping-pongs, ${
      (t.streamBytes / 1e6).toFixed(0)
    } MB streamed, ${t.churn} churned connections, ` +
    `${t.resets} resets mid-reply, ${t.slow} slow readers, ${t.overlong} over-long lines, ${t.knocks} knocks; ` +
    `${(t.verifiedBytes / 1e6).toFixed(0)} MB of echo verified byte for byte. ` +
    `Lost: ${t.lost}, corrupted: ${t.corrupted}, unexpected client errors: ${t.errors}; ` +
    `server errors expected from the resets: ${names.map((n) => result.servers[n].expectedErrors).join(" / ")}. ` +
    `Load average at the end: ${result.load}.`,
    "",
    ...(result.servers[names[0]].afterLoad ? [heapTable(result, names), ""] : []),
    ...result.checks.map((c) => `- ${c.ok ? "✓" : "✗"} ${c.what}`),
    "",
  ];
  return lines.join("\n");
}
