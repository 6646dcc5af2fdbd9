// Opt-outs: who asked not to be texted (GET api/optouts), one number's STOP/START history, and manual add or
// remove with a reason. A removal lifts only the licensee's own opt-out; the gateway records who did it and why.

import { call } from "./api.js";
import { action, add, badge, field, fill, h, href, notify, table, when } from "./dom.js";

export async function render(main, context) {
  const { params, me } = context;
  const number = params.get("phoneNumber") || "";
  const search = h("input", { type: "tel", name: "phoneNumber", value: number, placeholder: "+61412345678" });
  const form = h("form", { class: "card filters", role: "search", "aria-label": "Search opt-outs" },
    field("Phone number", search, "A whole number as you would send to it, or the start of one in international form (+614…)."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Search"), h("a", { href: href("optouts") }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = href("optouts", { phoneNumber: search.value.trim() });
  });
  const history = h("div", { id: "history" });
  const rerender = () => { main.replaceChildren(main.firstChild); return render(main, context); };
  const list = await call("GET", "api/optouts", { query: { phoneNumber: number, take: 100, continuationToken: params.get("continuationToken") },
    licensee: true });
  add(main, form,
    table("Opt-outs", [
      ["Number", (optOut) => optOut.phoneNumber],
      ["State", (optOut) => optOut.optedOut ? badge("opted_out") : "opted back in"],
      ["Since", (optOut) => when(optOut.at)],
      ["Source", (optOut) => optOut.source],
      ["Reason", (optOut) => h("span", { class: "preview" }, optOut.reason || "")],
      ["", (optOut) => action("History", () => showHistory(history, optOut.phoneNumber), { "aria-label": `History of ${optOut.phoneNumber}` })],
    ], list.optOuts, number ? "No opt-out for that number." : "Nobody has opted out."),
    list.continuationToken ? h("p", { class: "pager" },
      h("a", { href: href("optouts", { phoneNumber: number, continuationToken: list.continuationToken }) }, "More")) : null,
    history);
  if (!me.readOnly) add(main, changeForm(rerender));
  if (number && list.optOuts.length === 1) await showHistory(history, list.optOuts[0].phoneNumber);
  return null;
}

async function showHistory(slot, phoneNumber) {
  const answer = await call("GET", "api/optouts/history", { query: { phoneNumber }, licensee: true });
  fill(slot, h("h2", { tabindex: "-1" }, `History of ${answer.phoneNumber}`),
    table(`History of ${answer.phoneNumber}`, [
      ["At", (change) => when(change.at)],
      ["Change", (change) => change.optedOut ? "opted out" : "opted back in"],
      ["Source", (change) => change.source],
      ["Applies to", (change) => change.sender ? `everyone sending from ${change.sender}` : change.scope === "*" ? "every licensee" : "this licensee"],
      ["Reason", (change) => h("span", { class: "preview" }, change.reason || "")],
      ["By key", (change) => h("span", { class: "mono" }, change.byKeyId || "")],
    ], answer.changes, "No changes recorded."));
  slot.querySelector("h2").focus();
}

function changeForm(rerender) {
  const number = h("input", { type: "tel", name: "phoneNumber", required: true });
  const reason = h("input", { type: "text", name: "reason", required: true, maxlength: 500, size: 40 });
  const run = async (method) => {
    if (!number.reportValidity() || !reason.reportValidity()) return;
    const query = { phoneNumber: number.value.trim(), reason: reason.value.trim() };
    const answer = method === "POST"
      ? await call("POST", "api/optouts", { body: { PhoneNumber: query.phoneNumber, Reason: query.reason }, licensee: true })
      : await call("DELETE", "api/optouts", { query, licensee: true });
    const elsewhere = (answer.blockedElsewhere || []).length;
    notify(`${answer.phoneNumber} is ${answer.optedOut ? "opted out" : "no longer opted out of your messages"}` +
      (elsewhere ? `; a STOP it sent to a sender number still blocks it (${elsewhere}).` : "."));
    await rerender();
  };
  return h("form", { class: "card", "aria-labelledby": "change-optout", onsubmit: (event) => event.preventDefault() },
    h("h2", { id: "change-optout" }, "Add or remove by hand"),
    h("p", { class: "muted" }, "Record why: the reason and your key are kept with the change. Removing lifts only your own opt-out; " +
      "a STOP the person sent to a sender number stays."),
    h("div", { class: "row" }, field("Phone number", number), field("Reason", reason)),
    h("div", { class: "actions" }, action("Opt out", () => run("POST"), { class: "primary" }), action("Remove opt-out", () => run("DELETE"), { class: "danger" })));
}
