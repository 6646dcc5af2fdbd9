// Settings of the licensee: quiet hours and time zone (api/settings), its routing table (api/routes) and its guard
// (api/guard). Routes and guard are edited as the JSON the API takes, with the API's own checks.

import { call } from "./api.js";
import { action, add, field, h, notify, table } from "./dom.js";

export async function render(main, context) {
  const { me } = context;
  const [settings, routes, guard] = await Promise.all([
    call("GET", "api/settings", { licensee: true }),
    call("GET", "api/routes", { licensee: true }),
    call("GET", "api/guard", { licensee: true }),
  ]);
  const rerender = () => { main.replaceChildren(main.firstChild); return render(main, context); };
  add(main, quietHours(settings, me, rerender), routing(routes, me, rerender), guardCard(guard, me, rerender));
  return null;
}

function quietHours(settings, me, rerender) {
  const hours = h("input", { type: "text", name: "quietHours", value: settings.quietHours || "", placeholder: "21:00-08:00", size: 14 });
  const zone = h("input", { type: "text", name: "timeZone", value: settings.timeZone || "", placeholder: "Australia/Sydney", size: 24,
    list: "zones" });
  const zones = h("datalist", { id: "zones" }, (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : []).map((name) => h("option", { value: name })));
  const save = async (change) => {
    const answer = await call("PUT", "api/settings", { body: change, licensee: true });
    notify(`Saved: quiet hours ${answer.quietHours || "none"}, time zone ${answer.timeZone}.`);
    await rerender();
  };
  return h("section", { class: "card", "aria-labelledby": "quiet" },
    h("h2", { id: "quiet" }, "Quiet hours and time zone"),
    h("p", { class: "muted" }, "Messages not marked urgent wait until quiet hours end, in the licensee's time zone. Usage days are counted in it too."),
    h("div", { class: "row" },
      field("Quiet hours", hours, "HH:MM-HH:MM; empty: none."),
      field("Time zone", zone, "An IANA name."), zones),
    me.readOnly ? null : h("div", { class: "actions" },
      action("Save", () => save(hours.value.trim() ? { QuietHours: hours.value.trim(), TimeZone: zone.value.trim() || undefined }
        : { NoQuietHours: true, TimeZone: zone.value.trim() || undefined }), { class: "primary" })));
}

function routing(state, me, rerender) {
  const editor = h("textarea", { name: "rules", rows: 6, spellcheck: "false" }, JSON.stringify(state.rules, null, 2));
  return h("section", { class: "card", "aria-labelledby": "routing" },
    h("h2", { id: "routing" }, "Routing table"),
    h("p", { class: "muted" }, state.source === "licensee" ? "The licensee's own table." : "The deployment's default: the licensee has no table of its own."),
    table("Routing rules", [
      ["Match", (rule) => rule.match || "everything"],
      ["Providers, in order", (rule) => (rule.providers || []).join(" → ")],
      ["Sender", (rule) => rule.sender || ""],
    ], state.rules, "No rules."),
    me.readOnly ? null : [
      field("Rules (JSON)", editor, "A list of {match, providers, sender}; the first rule that matches a number routes it."),
      h("div", { class: "actions" },
        action("Save rules", async () => {
          await call("PUT", "api/routes", { body: { Rules: parse(editor.value) }, licensee: true });
          notify("Routing table saved.");
          await rerender();
        }, { class: "primary" }),
        state.source === "licensee" ? action("Use the default", async () => {
          await call("DELETE", "api/routes", { licensee: true });
          notify("Back to the deployment's routing table.");
          await rerender();
        }) : null)],
  );
}

function guardCard(guard, me, rerender) {
  const change = h("textarea", { name: "guard", rows: 5, spellcheck: "false", placeholder: '{"Caps": {"dailySegments": 1000}}' });
  return h("section", { class: "card", "aria-labelledby": "guard" },
    h("h2", { id: "guard" }, "Guard"),
    h("p", { class: "muted" }, guard.source === "licensee" ? "The licensee's own guard." : "The deployment's default guard."),
    h("dl", { class: "facts" },
      h("dt", {}, "Countries"), h("dd", {}, summary(guard.countries), ` · others: ${guard.otherCountries}`),
      h("dt", {}, "Number types"), h("dd", {}, summary(guard.numberTypes)),
      h("dt", {}, "Pumping check"), h("dd", {}, guard.pumping),
      h("dt", {}, "Caps"), h("dd", {}, summary(guard.caps) || "none")),
    table("Spend against caps", [
      ["Cap", (use) => use.cap], ["Used", (use) => String(use.used ?? "")], ["Limit", (use) => String(use.limit ?? "")],
      ["Period", (use) => use.period],
    ], guard.spent || [], "No caps in use."),
    me.readOnly ? null : [
      field("Change (JSON)", change, "The fields to change, as PUT /api/guard takes them. A licensee key may only tighten its guard."),
      h("div", { class: "actions" }, action("Apply change", async () => {
        await call("PUT", "api/guard", { body: parse(change.value), licensee: true });
        notify("Guard changed.");
        await rerender();
      }, { class: "primary" }))],
  );
}

function summary(object) {
  return Object.entries(object || {}).filter(([, value]) => value !== null && value !== undefined)
    .map(([name, value]) => `${name}: ${typeof value === "object" ? JSON.stringify(value) : value}`).join(", ");
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`That is not JSON: ${error.message}`);
  }
}

