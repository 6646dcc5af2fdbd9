// Messages: the ledger's search (GET api/sms), newest first, a page at a time by its continuation token, and
// refreshed while any message on the first page is still on its way.

import { call } from "./api.js";
import { add, badge, field, fill, h, href, table, when } from "./dom.js";

// The ledger's filters (QuerySms) and how the form asks for each.
const FILTERS = [
  ["from", "From", "datetime-local"], ["to", "To", "datetime-local"], ["status", "Status", "status"],
  ["phoneNumber", "Phone number", "tel"], ["contactId", "Contact id", "text"], ["linkedObjectId", "Linked object id", "text"],
  ["suiteId", "Suite id", "text"], ["reference", "Reference", "text"],
];
const STATUSES = ["", "scheduled", "queued", "sending", "sent", "partially_sent", "delivered", "undelivered", "failed", "opted_out",
  "expired", "cancelled", "blocked"];
// Polled while the first page shows a message on its way (a scheduled one waits for its time, not for this page), every
// 2 s at first and less often the longer nothing changes: a message sent through a provider that never reports
// delivery stays "sent" for good.
const IN_FLIGHT = new Set(["queued", "sending", "sent", "partially_sent"]);
const POLL_MS = 2000;
const POLL_MAX_MS = 30000;
const PAGE_SIZE = 50;

export async function render(main, { params }) {
  const inputs = {};
  const form = h("form", { class: "card filters", role: "search", "aria-label": "Search messages" },
    FILTERS.map(([name, label, kind]) => {
      const input = kind === "status"
        ? h("select", { name }, STATUSES.map((status) => h("option", { value: status }, status ? status.replace(/_/g, " ") : "any")))
        : h("input", { type: kind, name, step: kind === "datetime-local" ? 1 : null });
      input.value = fromQuery(kind, params.get(name) || "");
      inputs[name] = [input, kind];
      return field(label, input);
    }),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Search"),
      h("a", { href: href("messages") }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = {};
    for (const [name, [input, kind]] of Object.entries(inputs)) query[name] = toQuery(kind, input.value);
    location.hash = href("messages", query);
  });

  const live = h("p", { class: "live", "aria-live": "polite" });
  const results = h("div", { id: "results", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  add(main, form, live, results);

  const query = {};
  for (const [name] of FILTERS) query[name] = params.get(name) || undefined;
  const tokens = [null]; // the continuation token of each page shown so far: back and forward
  let timer = null;
  let stopped = false;
  let shown = "";
  let wait = POLL_MS;

  async function load(index) {
    const answer = await call("GET", "api/sms", { query: { ...query, take: PAGE_SIZE, continuationToken: tokens[index] }, licensee: true });
    if (stopped) return;
    tokens.length = index + 1;
    if (answer.continuationToken) tokens.push(answer.continuationToken);
    const now = JSON.stringify(answer.messages);
    wait = now === shown ? Math.min(wait * 1.5, POLL_MAX_MS) : POLL_MS;
    if (now !== shown) draw(answer.messages, index);
    shown = now;
    clearTimeout(timer);
    const moving = index === 0 && answer.messages.some((message) => IN_FLIGHT.has(message.status));
    fill(live, moving ? "Live: refreshing while messages are on their way." : "");
    if (moving) timer = setTimeout(() => load(0).catch(() => {}), wait);
  }

  function draw(messages, index) {
    fill(results,
      table("Messages", [
        ["Created", (m) => when(m.createdAt)],
        ["Status", (m) => badge(m.status)],
        ["To", (m) => m.recipient ? m.recipient.phoneNumber : `${m.recipientCount} recipient${m.recipientCount === 1 ? "" : "s"}`],
        ["Message", (m) => h("a", { href: href("message", {}, m.commId), class: "preview" }, m.preview || "(empty)")],
        ["Reference", (m) => h("span", { class: "mono" }, m.reference)],
        ["Segments", (m) => String(m.segments)],
      ], messages, "No message matches."),
      h("div", { class: "pager" },
        index > 0 ? h("button", { type: "button", onclick: () => load(index - 1) }, "Newer") : null,
        h("span", { class: "muted" }, `Page ${index + 1}`),
        tokens[index + 1] ? h("button", { type: "button", onclick: () => load(index + 1) }, "Older") : null));
    results.setAttribute("aria-busy", "false");
    // When the first page stood on the screen: the browser tests read it (milliseconds from the navigation's start).
    if (!performance.getEntriesByName("console:first-page").length) performance.mark("console:first-page");
  }

  await load(0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// A datetime-local input holds local time without a zone; the API takes ISO 8601 instants.
function toQuery(kind, value) {
  if (!value) return "";
  return kind === "datetime-local" ? new Date(value).toISOString() : value;
}

function fromQuery(kind, value) {
  if (!value || kind !== "datetime-local") return value;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
}
