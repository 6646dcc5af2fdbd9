// A stacked bar chart drawn as SVG elements (no library, no HTML strings): one bar per day, one band per series.

import { h, svg } from "./dom.js";

export const PALETTE = ["#1f5fbf", "#1a7f37", "#bf8700", "#cf222e", "#8250df", "#0a7b83", "#6e7781", "#d4479a", "#5b8a00", "#953800"];

// days: [{label, values: {series: n}}]; series: the names in stacking order.
export function stackedBars(title, days, series) {
  const width = 760;
  const height = 260;
  const pad = { left: 44, right: 12, top: 12, bottom: 34 };
  const totals = days.map((day) => series.reduce((sum, name) => sum + (day.values[name] || 0), 0));
  const top = niceTop(Math.max(1, ...totals));
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;
  const step = plotWidth / Math.max(days.length, 1);
  const barWidth = Math.max(2, Math.min(36, step * 0.7));
  const y = (value) => pad.top + plotHeight - (value / top) * plotHeight;
  const ticks = [0, top / 4, top / 2, (3 * top) / 4, top];
  const labelEvery = Math.ceil(days.length / 12);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title },
    svg("title", {}, title),
    ticks.map((tick) => [
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick), stroke: "#d0d7de" }),
      svg("text", { x: pad.left - 6, y: y(tick) + 4, "text-anchor": "end", "font-size": 11, fill: "#57606a" }, formatTick(tick)),
    ]),
    days.map((day, index) => {
      const x = pad.left + index * step + (step - barWidth) / 2;
      let base = 0;
      return [
        series.map((name, band) => {
          const value = day.values[name] || 0;
          if (!value) return null;
          const rect = svg("rect", { x, width: barWidth, y: y(base + value), height: y(base) - y(base + value), fill: PALETTE[band % PALETTE.length] },
            svg("title", {}, `${day.label}: ${name} ${value}`));
          base += value;
          return rect;
        }),
        index % labelEvery === 0
          ? svg("text", { x: x + barWidth / 2, y: height - pad.bottom + 16, "text-anchor": "middle", "font-size": 11, fill: "#57606a" }, day.label.slice(5))
          : null,
      ];
    }));
  const legend = h("div", { class: "legend" }, series.map((name, band) => h("span", {},
    h("span", { class: "swatch", style: null, "data-band": band }), name)));
  // Swatch colours through CSSOM, not a style attribute string, so the page's style-src 'self' holds.
  legend.querySelectorAll(".swatch").forEach((swatch) => { swatch.style.background = PALETTE[Number(swatch.dataset.band) % PALETTE.length]; });
  return h("figure", { class: "figure" }, chart, h("figcaption", {}, legend));
}

function niceTop(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const factor of [1, 2, 2.5, 5, 10]) if (factor * magnitude >= value) return factor * magnitude;
  return 10 * magnitude;
}

function formatTick(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}
