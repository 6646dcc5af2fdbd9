// Keys (admin keys only): every licensee's API keys; create one (shown once), rotate (the new one shown once,
// the old one kept for a grace period) and revoke.

import { call, session } from "./api.js";
import { action, add, badge, field, fill, h, notify, shownOnce, table, when } from "./dom.js";

export async function render(main, context) {
  const { me } = context;
  const list = await call("GET", "api/keys", { licensee: true });
  const secretSlot = context.secretSlot || (context.secretSlot = h("div", {}));
  const rerender = () => { main.replaceChildren(main.firstChild); return render(main, context); };
  add(main, secretSlot,
    table("API keys", [
      ["Key id", (key) => h("span", { class: "mono" }, key.keyId)],
      ["Name", (key) => key.name || ""],
      ["Licensee", (key) => h("span", { class: "mono" }, key.licenseeId || "")],
      ["Role", (key) => `${key.role}${key.readOnly ? ", read-only" : ""}`],
      ["State", (key) => key.active ? badge("active") : h("span", {}, badge("revoked"), " ", when(key.revokedAt || key.expiresAt))],
      ["Created", (key) => when(key.createdAt)],
      ["Expires", (key) => when(key.expiresAt) || "never"],
      ["", (key) => !key.active || me.readOnly ? "" : h("div", { class: "actions" },
        action("Rotate", async () => {
          const answer = await call("POST", `api/keys/${key.keyId}/rotate`, { body: { GraceHours: 24 } });
          // This tab's own key: it signs in with the new one from now on, before the old one stops working.
          if (key.keyId === me.keyId) session.key = answer.newKey.key;
          await rerender();
          fill(secretSlot, shownOnce(`New key for ${key.name || key.keyId}`, answer.newKey.key,
            `The key it replaces keeps working until ${answer.replacedUntil}. Copy the new key now: it is shown this once.`));
        }, { "aria-label": `Rotate key ${key.keyId}` }),
        key.keyId === me.keyId ? null : action("Revoke", async () => {
          await call("DELETE", `api/keys/${key.keyId}`);
          notify(`Revoked ${key.keyId}.`);
          await rerender();
        }, { class: "danger", "aria-label": `Revoke key ${key.keyId}` }))],
    ], list.keys, "No keys."));
  if (!me.readOnly) add(main, createForm(secretSlot, rerender));
  return null;
}

function createForm(secretSlot, rerender) {
  const licensee = h("input", { type: "text", name: "licenseeId", required: true, size: 38 });
  const name = h("input", { type: "text", name: "name", maxlength: 100 });
  const role = h("select", { name: "role" }, h("option", { value: "licensee" }, "licensee"), h("option", { value: "admin" }, "admin"));
  const readOnly = h("input", { type: "checkbox", name: "readOnly" });
  const days = h("input", { type: "number", name: "expiresInDays", min: 1, max: 3650 });
  const form = h("form", { class: "card", "aria-labelledby": "create-key" },
    h("h2", { id: "create-key" }, "Create a key"),
    h("div", { class: "row" },
      field("Licensee id", licensee, "The licensee whose data the key reaches."), field("Name", name, "Who or what uses it."),
      field("Role", role), field("Expires in days (optional)", days)),
    h("label", { class: "check" }, readOnly, " Read-only (can look, cannot send or change)"),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create key")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await call("POST", "api/keys", { body: { LicenseeId: licensee.value.trim(), Name: name.value.trim() || undefined,
        Role: role.value, ReadOnly: readOnly.checked, ExpiresInDays: days.value ? Number(days.value) : undefined } });
      await rerender();
      fill(secretSlot, shownOnce(`Key for ${answer.name || answer.licenseeId}`, answer.key));
      notify("Key created: copy it now.");
    } catch (error) {
      notify(error.message, "error");
    }
  });
  return form;
}
