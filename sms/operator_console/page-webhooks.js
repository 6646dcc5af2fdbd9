// Webhooks: the licensee's endpoints (add, rotate the secret, enable, remove), each one's delivery log with every
// attempt, and replay of one event or of a range. A secret is shown once, when made.

import { call } from "./api.js";
import { action, add, badge, field, fill, h, href, notify, shownOnce, table, when } from "./dom.js";

export async function render(main, context) {
  const { id, params, me } = context;
  if (id) return deliveries(main, id, params, me);
  const list = await call("GET", "api/webhooks", { licensee: true });
  // Where a secret is shown once: the same element across redraws, so it outlives the list it sits above.
  const secretSlot = context.secretSlot || (context.secretSlot = h("div", {}));
  const rerender = () => { main.replaceChildren(main.firstChild); return render(main, context); };
  add(main, secretSlot,
    table("Webhook endpoints", [
      ["URL", (endpoint) => h("a", { href: href("webhooks", {}, endpoint.endpointId) }, endpoint.url)],
      ["Events", (endpoint) => endpoint.eventTypes.length ? endpoint.eventTypes.join(", ") : "every type"],
      ["State", (endpoint) => endpoint.enabled ? badge("enabled") : h("span", {}, badge("disabled"), " ", endpoint.disabledReason || "")],
      ["Created", (endpoint) => when(endpoint.createdAt)],
      ["", (endpoint) => me.readOnly ? "" : h("div", { class: "actions" },
        action("Rotate secret", async () => {
          const answer = await call("POST", `api/webhooks/${endpoint.endpointId}/rotate-secret`, { licensee: true });
          fill(secretSlot, shownOnce(`New secret for ${endpoint.url}`, answer.secret,
            `The old secret keeps working until ${answer.previousSecretExpiresAt || "the grace period ends"}. Copy the new one now: it is shown this once.`));
        }, { "aria-label": `Rotate the secret of ${endpoint.url}` }),
        endpoint.enabled ? null : action("Enable", async () => {
          await call("POST", `api/webhooks/${endpoint.endpointId}/enable`, { licensee: true });
          notify("Enabled.");
          await rerender();
        }, { "aria-label": `Enable ${endpoint.url}` }),
        confirmAction("Remove", `Remove ${endpoint.url}?`, async () => {
          await call("DELETE", `api/webhooks/${endpoint.endpointId}`, { licensee: true });
          notify("Removed.");
          await rerender();
        }))],
    ], list.endpoints, "No endpoints yet: add one below."));
  if (!me.readOnly) add(main, addForm(list.eventTypes, secretSlot, rerender));
  return null;
}

function addForm(eventTypes, secretSlot, rerender) {
  const url = h("input", { type: "url", name: "url", required: true, placeholder: "https://example.com/hooks/sms", size: 48 });
  const boxes = eventTypes.map((type) => h("input", { type: "checkbox", name: "eventTypes", value: type }));
  const form = h("form", { class: "card", "aria-labelledby": "add-endpoint" },
    h("h2", { id: "add-endpoint" }, "Add an endpoint"),
    field("URL", url, "HTTPS, reachable from the gateway. Every event is signed (Standard Webhooks) with the endpoint's secret."),
    h("fieldset", {}, h("legend", {}, "Events (none ticked: every type)"),
      boxes.map((box, index) => h("label", { class: "check" }, box, ` ${eventTypes[index]} `))),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Add endpoint")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await call("POST", "api/webhooks", { licensee: true, body: {
        Url: url.value.trim(), EventTypes: boxes.filter((box) => box.checked).map((box) => box.value) } });
      await rerender();
      fill(secretSlot, shownOnce(`Signing secret for ${answer.url}`, answer.secret));
      notify("Endpoint added: copy its secret now.");
    } catch (error) {
      notify(error.message, "error");
    }
  });
  return form;
}

// A destructive button asks once more, in place, before it acts.
function confirmAction(label, question, run) {
  const slot = h("span", {});
  const ask = () => fill(slot, h("span", { class: "muted" }, `${question} `),
    action(`Yes, ${label.toLowerCase()}`, run, { class: "danger" }),
    h("button", { type: "button", onclick: reset }, "Keep"));
  const reset = () => fill(slot, h("button", { type: "button", class: "danger", onclick: () => { ask(); slot.querySelector("button").focus(); } }, label));
  reset();
  return slot;
}

async function deliveries(main, endpointId, params, me) {
  const token = params.get("continuationToken") || undefined;
  const log = await call("GET", `api/webhooks/${encodeURIComponent(endpointId)}/deliveries`,
    { query: { take: 50, continuationToken: token }, licensee: true });
  const replay = async (body) => {
    const answer = await call("POST", `api/webhooks/${encodeURIComponent(endpointId)}/replay`, { licensee: true, body });
    notify(`Replay queued: ${answer.queued} event${answer.queued === 1 ? "" : "s"}.`);
  };
  add(main, h("p", {}, h("a", { href: href("webhooks") }, "← Webhooks")),
    h("h2", {}, "Delivery log"),
    table("Delivery attempts", [
      ["At", (attempt) => when(attempt.at)],
      ["Event", (attempt) => h("span", {}, h("code", {}, attempt.eventType), h("br", {}), h("small", { class: "mono" }, attempt.eventId))],
      ["Attempt", (attempt) => `${attempt.attempt}${attempt.replay ? " (replay)" : ""}`],
      ["Outcome", (attempt) => h("span", {}, badge(attempt.outcome), attempt.statusCode ? ` HTTP ${attempt.statusCode}` : "")],
      ["Latency", (attempt) => `${attempt.latencyMs} ms`],
      ["Error / answer", (attempt) => h("div", { class: "preview" }, attempt.error || attempt.responseBody || "")],
      ["", (attempt) => me.readOnly ? "" : action("Replay", () => replay({ EventId: attempt.eventId }),
        { "aria-label": `Replay event ${attempt.eventId}` })],
    ], log.deliveries, "No deliveries yet."),
    log.continuationToken ? h("p", { class: "pager" }, h("a", { href: href("webhooks", { continuationToken: log.continuationToken }, endpointId) }, "Older")) : null);
  if (!me.readOnly) {
    const from = h("input", { type: "datetime-local", name: "from", step: 1, required: true });
    const to = h("input", { type: "datetime-local", name: "to", step: 1 });
    const form = h("form", { class: "card", "aria-labelledby": "replay-range" },
      h("h2", { id: "replay-range" }, "Replay a range"),
      h("div", { class: "row" }, field("From", from), field("To (optional)", to, "Empty: until now.")),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Replay events")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await replay({ From: new Date(from.value).toISOString(), To: to.value ? new Date(to.value).toISOString() : undefined });
      } catch (error) {
        notify(error.message, "error");
      }
    });
    add(main, form);
  }
  return null;
}
