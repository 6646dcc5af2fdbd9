// One message: what it said, each recipient's timeline, the replies, the webhook events it produced, and cancel
// while some recipient has not gone yet.

import { ApiError, call } from "./api.js";
import { action, add, badge, fill, h, href, notify, table, when } from "./dom.js";

const CANCELLABLE = new Set(["scheduled", "queued"]);
// Polled while a recipient is on its way (not while one waits for its scheduled time), every 2 s at first and less
// often while nothing changes: a provider may never report delivery.
const IN_FLIGHT = new Set(["queued", "sending", "sent"]);
const POLL_MS = 2000;
const POLL_MAX_MS = 30000;

export async function render(main, { id, heading }) {
  if (!id) {
    add(main, h("p", {}, "No message named. ", h("a", { href: href("messages") }, "Back to messages")));
    return null;
  }
  const body = h("div", {});
  add(main, h("p", {}, h("a", { href: href("messages") }, "← Messages")), body);
  let timer = null;
  let stopped = false;
  let shown = "";
  let wait = POLL_MS;

  async function load() {
    const message = await call("GET", `api/sms/${encodeURIComponent(id)}`, { licensee: true });
    const [replies, events] = await Promise.all([
      call("GET", `api/sms/${encodeURIComponent(id)}/replies`, { licensee: true }).then((answer) => answer.replies).catch(() => []),
      call("GET", `api/sms/${encodeURIComponent(id)}/events`, { query: { take: 500 }, licensee: true }).then((answer) => answer.events || [])
        .catch((error) => (error instanceof ApiError ? error : [])),
    ]);
    if (stopped) return;
    const now = JSON.stringify([message, replies, events instanceof ApiError ? events.message : events]);
    wait = now === shown ? Math.min(wait * 1.5, POLL_MAX_MS) : POLL_MS;
    if (now !== shown) {
      fill(heading, "Message ", h("span", { class: "mono" }, message.reference || message.commId));
      draw(message, replies, events);
    }
    shown = now;
    clearTimeout(timer);
    const moving = beingWritten(message) ? message.status === "queued" : message.recipients.some((recipient) => IN_FLIGHT.has(recipient.status));
    if (moving) timer = setTimeout(() => load().catch(() => {}), wait);
  }

  function draw(message, replies, events) {
    const writing = beingWritten(message);
    const waiting = writing
      ? (message.status === "queued" ? message.recipientCount : 0)
      : message.recipients.filter((recipient) => CANCELLABLE.has(recipient.status)).length;
    fill(body,
      h("div", { class: "grid" },
        h("section", { class: "card", "aria-labelledby": "facts" },
          h("h2", { id: "facts" }, "Summary"),
          h("dl", { class: "facts" },
            h("dt", {}, "Status"), h("dd", { id: "message-status" }, badge(message.status)),
            h("dt", {}, "Comm id"), h("dd", { class: "mono" }, message.commId),
            h("dt", {}, "Reference"), h("dd", { class: "mono" }, message.reference),
            h("dt", {}, "Created"), h("dd", {}, when(message.createdAt)),
            message.sendAt ? [h("dt", {}, "Send at"), h("dd", {}, when(message.sendAt))] : null,
            message.validUntil ? [h("dt", {}, "Valid until"), h("dd", {}, when(message.validUntil))] : null,
            h("dt", {}, "Encoding"), h("dd", {}, writing
              ? "Known once written"
              : `${message.encoding}, ${message.segments} segment${message.segments === 1 ? "" : "s"}`),
            h("dt", {}, "Licensee"), h("dd", { class: "mono" }, message.licenseeId)),
          waiting ? h("div", { class: "actions" }, action(`Cancel (${waiting} not sent yet)`, async () => {
            const answer = await call("DELETE", `api/sms/${encodeURIComponent(message.commId)}`, { licensee: true });
            notify(`Cancelled ${answer.cancelled} recipient${answer.cancelled === 1 ? "" : "s"}.`);
            await load();
          }, { class: "danger" })) : null)),
      h("h2", {}, "Recipients"),
      writing ? h("p", { class: "muted", id: "being-written" }, message.status === "queued"
        ? `Being written: ${plural(message.recipientCount, "recipient")}, listed here in a moment.`
        : `Cancelled before it was written: ${plural(message.recipientCount, "recipient")}, none sent.`) : null,
      message.recipients.map((recipient) => h("section", { class: "card recipient", "aria-label": `Recipient ${recipient.phoneNumber}` },
        h("h3", {}, recipient.phoneNumber, recipient.name ? ` (${recipient.name})` : "", " ", badge(recipient.status)),
        recipient.error ? h("p", { class: "error" }, recipient.error) : null,
        h("ol", { class: "timeline", "aria-label": "Timeline" }, recipient.timeline.map((event) => h("li", {},
          badge(event.status), " ", when(event.at),
          event.provider ? h("span", { class: "muted" }, ` via ${event.provider}`) : null,
          event.attempt ? h("span", { class: "muted" }, `, attempt ${event.attempt}`) : null,
          event.error ? h("span", { class: "error" }, ` ${event.error}`) : null,
          event.guard ? h("span", { class: "muted" }, ` (guard: ${event.guard})`) : null))),
        recipient.timelineOmitted ? h("p", { class: "muted" }, `${recipient.timelineOmitted} earlier events not kept.`) : null)),
      h("h2", {}, "Replies"),
      table("Replies", [
        ["Received", (reply) => when(reply.receivedAt)],
        ["From", (reply) => reply.fromNumber],
        ["Text", (reply) => h("div", { class: "body-text reply" }, reply.body)],
      ], replies, "No replies."),
      h("h2", {}, "Webhook events"),
      events instanceof ApiError
        ? h("p", { class: "error" }, events.message)
        : table("Webhook events", [
          ["At", (event) => when(event.at)],
          ["Type", (event) => h("code", {}, event.type)],
          ["Event", (event) => h("details", {}, h("summary", { class: "mono" }, event.id), h("pre", { class: "payload" }, pretty(event.payload)))],
        ], events, "No webhook events: the licensee's endpoints are sent them, so none are kept while it has none."));
  }

  await load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// A message accepted in one storage call (issue 30) is answered from its commId until the worker writes it, about a
// second: queued (or cancelled), with recipientCount, no recipients yet, and no encoding or segments (nothing stored
// holds its body yet).
function beingWritten(message) {
  return message.encoding == null && message.recipients.length === 0;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

// An event's payload is the JSON text as it was signed and sent: shown indented, as text.
function pretty(payload) {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    return payload;
  }
}
