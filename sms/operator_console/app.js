// The console's shell: sign-in, the navigation, and which page the address's #fragment names. Pages live in
// page-*.js; each exports `render(main, params)` and may return a function that stops what it started (a poll).

import { ApiError, call, session } from "./api.js";
import { add, fill, h, notify } from "./dom.js";
import * as keys from "./page-keys.js";
import * as message from "./page-message.js";
import * as messages from "./page-messages.js";
import * as optouts from "./page-optouts.js";
import * as send from "./page-send.js";
import * as settings from "./page-settings.js";
import * as usage from "./page-usage.js";
import * as webhooks from "./page-webhooks.js";

// #/messages, #/messages/<commId>, ...: [path, title, page, shown in the navigation, admin only].
const PAGES = [
  ["messages", "Messages", messages, true, false],
  ["send", "Send", send, true, false],
  ["usage", "Usage", usage, true, false],
  ["webhooks", "Webhooks", webhooks, true, false],
  ["optouts", "Opt-outs", optouts, true, false],
  ["settings", "Settings", settings, true, false],
  ["keys", "Keys", keys, true, true],
  ["message", "Message", message, false, false],
];

let me = null; // the signed-in key as GET api/keys/current describes it: keyId, licenseeId, role, readOnly
let licensees = null; // an admin's licensee list (GET api/licensees), read once a sign-in: it reads every key's row
let stop = null; // what the page on show started and must stop when another replaces it

function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  return { name: name || "messages", id: rest.join("/") || null, params: new URLSearchParams(query) };
}

async function show() {
  const main = document.getElementById("main");
  if (stop) stop();
  stop = null;
  if (!me) return signIn(main);
  const { name, id, params } = route();
  const entry = PAGES.find(([path]) => path === name) || PAGES[0];
  const [path, title, page, , adminOnly] = entry;
  drawNavigation(path === "message" ? "messages" : path);
  document.title = `${title} · SMS Gateway console`;
  const heading = h("h1", { tabindex: "-1" }, title);
  fill(main, heading);
  if (adminOnly && me.role !== "admin") {
    add(main, h("p", {}, "This page is for admin keys; this key is a licensee's."));
    return;
  }
  try {
    stop = (await page.render(main, { id, params, me, heading })) || null;
  } catch (error) {
    add(main, h("p", { class: "error", role: "alert" }, error.message));
    if (error instanceof ApiError && error.status === 401) return signOut("The key was refused: sign in again.");
  }
  heading.focus({ preventScroll: true });
}

function drawNavigation(current) {
  const nav = document.getElementById("nav");
  const items = PAGES.filter(([, , , listed, adminOnly]) => listed && (!adminOnly || me.role === "admin"));
  fill(nav, h("ul", {}, items.map(([path, title]) => h("li", {},
    h("a", { href: `#/${path}`, "aria-current": path === current ? "page" : null }, title)))));
  const who = document.getElementById("who");
  const acting = session.acting;
  fill(who,
    h("span", {}, `${me.name || "key"} · ${me.role}${me.readOnly ? " · read-only" : ""} · licensee `),
    h("code", {}, acting || me.licenseeId || "(none)"),
    me.role === "admin" ? licenseePicker() : null,
    h("button", { type: "button", class: "link", onclick: () => signOut("Signed out.") }, "Sign out"));
}

// An admin works on one licensee at a time: its own, or one it names here (the API's licenseeId).
function licenseePicker() {
  const input = h("input", { type: "text", id: "acting", value: session.acting || "", placeholder: "its own", size: 12,
    "aria-label": "Act for licensee", list: "licensees", autocomplete: "off" });
  const list = h("datalist", { id: "licensees" });
  licensees = licensees || call("GET", "api/licensees").then((answer) => answer.licensees || []).catch(() => []);
  licensees.then((all) => fill(list, all.map((licensee) => h("option", { value: licensee.licenseeId }))));
  const form = h("form", { class: "acting", onsubmit: (event) => {
    event.preventDefault();
    session.acting = input.value.trim() || null;
    notify(session.acting ? `Acting for licensee ${session.acting}.` : "Acting for the key's own licensee.");
    show();
  } }, input, list, h("button", { type: "submit" }, "Switch"));
  return form;
}

function signIn(main, message) {
  fill(document.getElementById("nav"));
  fill(document.getElementById("who"));
  document.title = "Sign in · SMS Gateway console";
  const input = h("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "off", required: true,
    spellcheck: "false", "aria-describedby": "api-key-hint" });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const form = h("form", { class: "card sign-in", onsubmit: async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    input.value = ""; // the key leaves the page: it is kept in this tab's session storage only
    try {
      me = await call("GET", "api/keys/current", { key });
      session.key = key;
      notify(`Signed in as ${me.name || me.keyId}.`);
      show();
    } catch (failure) {
      fill(error, failure.status === 401 ? "That key was not accepted." : failure.message);
      input.focus();
    }
  } },
  h("h1", {}, "Sign in"),
  h("div", { class: "field" },
    h("label", { for: "api-key" }, "API key"), input,
    h("small", { id: "api-key-hint" }, "sms_… as `python -m sms keys create` printed it. It is kept for this tab only, and sent to this gateway only.")),
  h("button", { type: "submit", class: "primary" }, "Sign in"),
  error);
  fill(main, form);
  input.focus();
}

function signOut(message) {
  session.clear();
  me = null;
  licensees = null;
  if (stop) stop();
  stop = null;
  signIn(document.getElementById("main"), message);
}

async function start() {
  window.addEventListener("hashchange", show);
  if (session.key) {
    try {
      me = await call("GET", "api/keys/current");
    } catch {
      session.clear();
    }
  }
  show();
}

start();
