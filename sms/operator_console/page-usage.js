// Usage: what the licensee sent per day (GET api/usage), as a chart by status or by provider, a table, and a CSV
// of the same rows made here in the browser from the API's answer.

import { call } from "./api.js";
import { stackedBars } from "./chart.js";
import { add, field, fill, h, href, table } from "./dom.js";

const DAY_MS = 86400000;

export async function render(main, { params }) {
  const today = new Date().toISOString().slice(0, 10);
  const from = h("input", { type: "date", name: "from", value: params.get("from") || isoDay(Date.now() - 29 * DAY_MS) });
  const to = h("input", { type: "date", name: "to", value: params.get("to") || today });
  const by = h("select", { name: "by" }, [["status", "By status"], ["provider", "By provider"]].map(([value, label]) =>
    h("option", { value }, label)));
  by.value = params.get("by") || "status";
  const form = h("form", { class: "card filters", "aria-label": "Usage range" },
    field("From", from), field("To", to), field("Chart", by),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Show")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = href("usage", { from: from.value, to: to.value, by: by.value });
  });
  const out = h("div", {});
  add(main, form, out);

  const answer = await call("GET", "api/usage", { query: { from: from.value, to: to.value }, licensee: true });
  const days = answer.days || [];
  const key = by.value === "provider" ? "byProvider" : "byStatus";
  const series = [...new Set(days.flatMap((day) => Object.keys(day[key] || {})))].sort();
  const totals = days.reduce((sum, day) => ({ messages: sum.messages + day.messages, recipients: sum.recipients + day.recipients,
    segments: sum.segments + day.segments }), { messages: 0, recipients: 0, segments: 0 });
  const download = h("button", { type: "button", onclick: () => saveCsv(days, from.value, to.value) }, "Export CSV");
  fill(out,
    h("div", { class: "grid" },
      ["messages", "recipients", "segments"].map((name) => h("section", { class: "card" },
        h("h2", {}, name[0].toUpperCase() + name.slice(1)), h("p", { class: "big", "data-total": name }, String(totals[name]))))),
    days.length
      ? stackedBars(`Recipients per day ${by.value === "provider" ? "by provider" : "by status"}`,
        days.map((day) => ({ label: day.day, values: day[key] || {} })), series)
      : null,
    h("div", { class: "actions" }, download),
    h("h2", {}, "Per day"),
    table("Usage per day", [
      ["Day", (day) => day.day],
      ["Messages", (day) => String(day.messages)],
      ["Recipients", (day) => String(day.recipients)],
      ["Segments", (day) => String(day.segments)],
      ["By status", (day) => summary(day.byStatus)],
      ["By provider", (day) => summary(day.byProvider)],
      ["Time zone", (day) => day.timeZone],
    ], days, "Nothing sent in this range."));
  return null;
}

function summary(counts) {
  return Object.entries(counts || {}).map(([name, count]) => `${name} ${count}`).join(", ");
}

function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

// One row per day and status/provider count, as a spreadsheet reads it. Cells that start like a formula are
// prefixed with ' so a spreadsheet shows them as text (OWASP, CSV injection).
export function csv(days) {
  const statuses = [...new Set(days.flatMap((day) => Object.keys(day.byStatus || {})))].sort();
  const providers = [...new Set(days.flatMap((day) => Object.keys(day.byProvider || {})))].sort();
  const header = ["day", "timeZone", "messages", "recipients", "segments", ...statuses.map((s) => `status:${s}`),
    ...providers.map((p) => `provider:${p}`)];
  const rows = days.map((day) => [day.day, day.timeZone, day.messages, day.recipients, day.segments,
    ...statuses.map((s) => (day.byStatus || {})[s] || 0), ...providers.map((p) => (day.byProvider || {})[p] || 0)]);
  return [header, ...rows].map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n";
}

function cell(value) {
  let text = String(value ?? "");
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function saveCsv(days, from, to) {
  const url = URL.createObjectURL(new Blob([csv(days)], { type: "text/csv;charset=utf-8" }));
  const link = h("a", { href: url, download: `usage-${from}-to-${to}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
