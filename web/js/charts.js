// Plain SVG bar charts (no library): horizontal bars for rankings, grouped columns for daily trends.
import { h } from "./dom.js";

export function hbars(items, { width = 380, barH = 18, gap = 6, labelW = 110, empty = "暂无数据" } = {}) {
  if (!items.length) return h("div", { class: "muted" }, empty);
  const max = Math.max(1, ...items.map((i) => i.value));
  const height = items.length * (barH + gap);
  const room = width - labelW - 40;
  return h("svg:svg", { class: "bars", width: "100%", viewBox: `0 0 ${width} ${height}`, role: "img" },
    items.map((it, n) => {
      const y = n * (barH + gap);
      const w = Math.max(2, (it.value / max) * room);
      return h("svg:g", {},
        h("svg:title", {}, `${it.label}：${it.value}`),
        h("svg:text", { x: labelW - 6, y: y + barH - 4, "text-anchor": "end" }, it.label.slice(0, 8)),
        h("svg:rect", { class: "bar", x: labelW, y, width: w, height: barH, rx: 2 }),
        h("svg:text", { class: "val", x: labelW + w + 4, y: y + barH - 4 }, String(it.value)));
    }));
}

// days: [{label, values: [a, b]}], series: ["工单", "来电"]
export function columns(days, series, { width = 380, height = 170 } = {}) {
  if (!days.length) return h("div", { class: "muted" }, "暂无数据");
  const max = Math.max(1, ...days.flatMap((d) => d.values));
  const top = 16;
  const base = height - 20;
  const slot = width / days.length;
  const bw = Math.min(16, (slot - 8) / series.length);
  return h("svg:svg", { class: "bars", width: "100%", viewBox: `0 0 ${width} ${height}`, role: "img" },
    series.map((s, i) => h("svg:g", {},
      h("svg:rect", { class: `bar${i ? " alt" : ""}`, x: 4 + i * 70, y: 2, width: 10, height: 10 }),
      h("svg:text", { x: 18 + i * 70, y: 11 }, s))),
    days.map((d, n) => h("svg:g", {},
      d.values.map((v, i) => {
        const bh = ((base - top) * v) / max;
        const x = n * slot + (slot - bw * d.values.length) / 2 + i * bw;
        return h("svg:rect", { class: `bar${i ? " alt" : ""}`, x, y: base - bh, width: bw - 1, height: Math.max(bh, 0.5) },
          h("svg:title", {}, `${d.label} ${series[i]}：${v}`));
      }),
      h("svg:text", { x: n * slot + slot / 2, y: height - 4, "text-anchor": "middle" }, d.label))));
}
