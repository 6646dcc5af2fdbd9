// Send: one message to one or more numbers, now or at a time, through the same route ServiceStack clients post to.

import { call, session } from "./api.js";
import { add, field, h, href, notify } from "./dom.js";

export async function render(main, { me }) {
  if (me.readOnly) {
    add(main, h("p", {}, "This key is read-only: it cannot send."));
    return null;
  }
  // No key sends for another licensee (the API refuses SMSModel.LicenseeId naming one): its messages go out under its
  // own key, sender, quiet hours and guard, so an admin acting for another is not offered a form that would send as itself.
  if (session.acting && session.acting !== me.licenseeId) {
    add(main, h("p", {}, `You are acting for licensee ${session.acting}. Messages are sent with that licensee's own key; `,
      "switch back to your own licensee to send as it."));
    return null;
  }
  const to = h("textarea", { name: "to", rows: 3, required: true, placeholder: "+61412345678" });
  const text = h("textarea", { name: "body", rows: 4, required: true, maxlength: 1600 });
  const sendAt = h("input", { type: "datetime-local", name: "sendAt", step: 1 });
  const reference = h("input", { type: "text", name: "linkedObjectId", maxlength: 100 });
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card", "aria-label": "Send a message" },
    field("To", to, "One number per line, in E.164 (+61…) or the deployment's home format."),
    field("Message", text),
    h("div", { class: "row" },
      field("Send at (optional)", sendAt, "Your local time; empty sends now."),
      field("Linked object id (optional)", reference, "A Guid of yours for what this message is about (a booking, a case).")),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Send")),
    result);
  // One Idempotency-Key per message as typed: pressing Send again after an answer that never came (a dropped
  // connection, a timeout) is the same request, which the gateway answers from the first without sending it twice.
  // Any change to the form makes it another message, with a key of its own.
  let attempt = newKey();
  form.addEventListener("input", () => { attempt = newKey(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const numbers = to.value.split(/[\n,;]+/).map((number) => number.trim()).filter(Boolean);
    const model = { To: numbers.map((number) => ({ PhoneNumber: number })), MessageBody: text.value };
    if (sendAt.value) model.SendAt = new Date(sendAt.value).toISOString();
    if (reference.value.trim()) model.LinkedObjectId = reference.value.trim();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const answer = await call("POST", "api/send", { body: { SMSModel: model }, headers: { "Idempotency-Key": attempt } });
      attempt = newKey();
      notify(`Accepted: ${answer.recipients} recipient${answer.recipients === 1 ? "" : "s"}, ${answer.segments} segment${answer.segments === 1 ? "" : "s"}.`);
      result.replaceChildren(h("p", {}, "Accepted. ", h("a", { href: href("message", {}, answer.commId), id: "sent-message" }, "Follow it")));
      text.value = "";
    } catch (error) {
      result.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
    } finally {
      button.disabled = false;
    }
  });
  add(main, form);
  return null;
}

// 128 random bits as hex (crypto.getRandomValues works on plain http too, unlike crypto.randomUUID).
function newKey() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
