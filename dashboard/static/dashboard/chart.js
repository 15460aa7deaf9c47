/* Python Logger explorer, the histogram: the stats API's buckets as stacked bars in an SVG.
 *
 * Pure drawing, no requests: dashboard.js calls `window.loggerChart(svg, {width, stats,
 * series, seriesClass})` with each answer. Text goes in through textContent only.
 */
(() => {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const CHART = { height: 240, top: 14, right: 12, bottom: 30, left: 48, labelWidth: 84 };

  function svg(name, attributes = {}, parent = null) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  /** Round axis steps (1, 2 or 5 times a power of ten) from zero to at least `max`. */
  function niceTicks(max) {
    if (max <= 0) return [0, 1];
    const raw = max / 4;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const step = Math.max(1, [1, 2, 5, 10].map((f) => f * magnitude).find((s) => s >= raw));
    const ticks = [];
    for (let tick = 0; tick < max + step; tick += step) ticks.push(tick);
    return ticks;
  }

  /** A short label for a bucket start; `date` is already in the chosen zone, so no conversion. */
  function bucketLabel(date, interval) {
    const [year, month, day] = date.slice(0, 10).split("-").map(Number);
    const monthName = MONTHS[month - 1];
    if (interval === "month") return `${monthName} ${year}`;
    if (interval === "minute") return date.slice(11, 16);
    if (interval === "hour") return `${monthName} ${day}, ${date.slice(11, 16)}`;
    return `${monthName} ${day}`;
  }

  function bucketTitle(bucket, interval, series) {
    const when = bucketLabel(bucket.date, interval);
    const prefix = interval === "week" ? `Week of ${when}` : when;
    const parts = series.filter((s) => bucket[s.name]).map(
      (s) => `${s.name} ${bucket[s.name].toLocaleString()}`,
    );
    const detail = parts.length ? ` (${parts.join(", ")})` : "";
    return `${prefix}: ${bucket.total.toLocaleString()} matches${detail}`;
  }

  /** Draw `stats` (the stats API's answer) into the `chart` SVG, `width` pixels wide. */
  function drawChart(chart, { width, stats, series, seriesClass }) {
    chart.replaceChildren();
    const { height, top, right, bottom, left, labelWidth } = CHART;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const baseline = top + plotHeight;
    const { buckets } = stats;
    const ticks = niceTicks(buckets.reduce((max, bucket) => Math.max(max, bucket.total), 0));
    const scale = plotHeight / ticks[ticks.length - 1];

    for (const tick of ticks) {
      const y = baseline - tick * scale;
      svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }, chart);
      const label = svg("text", { x: left - 8, y: y + 4, "text-anchor": "end" }, chart);
      label.textContent = tick.toLocaleString();
    }

    const slot = plotWidth / Math.max(buckets.length, 1);
    // A gap between bars while they are wide enough to afford one.
    const barWidth = slot >= 6 ? Math.min(slot * 0.72, 56) : slot;
    const labelsFit = Math.max(1, Math.floor(plotWidth / labelWidth));
    const labelEvery = Math.max(1, Math.ceil(buckets.length / labelsFit));
    buckets.forEach((bucket, index) => {
      const group = svg("g", { class: "bucket", "data-date": bucket.date }, chart);
      svg("title", {}, group).textContent = bucketTitle(bucket, stats.interval, series);
      const hit = { class: "hit", x: left + index * slot, y: top, width: slot, height: plotHeight };
      svg("rect", hit, group);
      const x = left + index * slot + (slot - barWidth) / 2;
      let y = baseline;
      for (const { name } of series) {
        const value = bucket[name];
        if (!value) continue;
        const barHeight = value * scale;
        y -= barHeight;
        svg("rect", {
          class: `bar ${seriesClass(name)}`, "data-series": name, "data-value": value,
          x: x.toFixed(2), y: y.toFixed(2), width: barWidth.toFixed(2), height: barHeight.toFixed(2),
        }, group);
      }
      if (index % labelEvery === 0) {
        // Centred under its bar, but pulled in at the right edge so it is never cut off.
        const labelX = Math.min(left + (index + 0.5) * slot, width - labelWidth / 2);
        const label = svg("text", { x: labelX, y: baseline + 18, "text-anchor": "middle" }, chart);
        label.textContent = bucketLabel(bucket.date, stats.interval);
      }
    });
    svg("line", { class: "axis", x1: left, x2: width - right, y1: baseline, y2: baseline }, chart);

    if (stats.totals.total === 0) {
      const middle = { x: left + plotWidth / 2, y: top + plotHeight / 2, "text-anchor": "middle" };
      const empty = svg("text", { class: "empty", ...middle }, chart);
      empty.textContent = "No message matches in this range.";
    }
  }

  window.loggerChart = drawChart;
})();
