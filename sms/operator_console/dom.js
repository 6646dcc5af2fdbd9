// Building the page from data without ever parsing text as HTML. Every string given here becomes a text node or an
// attribute value, so a message body like `<img src=x onerror=...>` shows as those characters. The page's CSP
// (require-trusted-types-for 'script', trusted-types 'none') makes the browser refuse HTML parsing of strings anyway.

const SVG = "http://www.w3.org/2000/svg";

// h("button", {class: "primary", onclick: f}, "Send"): an element, its attributes and listeners, and its children
// (strings become text; null, undefined and false are skipped; arrays are flattened).
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "value" && "value" in element) element.value = value;
    else if (name === "checked") element.checked = Boolean(value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Add to what `element` holds (null, undefined and false are skipped, as in h(); Node.append would write "null").
export function add(element, ...children) {
  append(element, children);
  return element;
}

// Replace what `element` holds.
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// The address of a console page: href("messages", {status: "sent"}), href("message", {}, commId).
export function href(name, params = {}, id = null) {
  const query = new URLSearchParams(Object.entries(params).filter(([, value]) => value !== "" && value !== null && value !== undefined));
  return `#/${name}${id ? `/${encodeURIComponent(id)}` : ""}${query.size ? `?${query}` : ""}`;
}

// An instant as the operator's local time, with the exact UTC instant in its tooltip.
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return h("time", { datetime: iso, title: iso }, date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }));
}

// A status as a badge whose colour says how it ended; the word itself is always there too.
export function badge(status) {
  return status ? h("span", { class: `badge status-${String(status).replace(/[^a-z_]/g, "")}` }, status.replace(/_/g, " ")) : "";
}

// A table: `columns` are [heading, row => cell]; `rows` the data. An empty table says so instead.
export function table(caption, columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" }, h("table", {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row))))))));
}

// A labelled form field: the label names the input for screen readers and clicks.
let fieldCount = 0;
export function field(label, input, hint) {
  const id = input.id || `field-${++fieldCount}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", { id: hintId }, hint) : null);
}

// A button that runs `action` (a promise) with the button disabled meanwhile, reporting a failure in the page's notice.
export function action(label, run, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await run();
    } catch (error) {
      notify(error.message || String(error), "error");
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// The one notice line (role=status / alert): what just happened, read out by screen readers.
export function notify(message, kind = "info") {
  const notice = document.getElementById("notice");
  if (!notice) return;
  notice.className = `notice ${kind}`;
  notice.setAttribute("role", kind === "error" ? "alert" : "status");
  fill(notice, message);
  clearTimeout(notify.timer);
  if (kind !== "error") notify.timer = setTimeout(() => fill(notice), 8000); // an error stays until the next notice
}

// A secret shown once: the value, a copy button, and "Done", which takes the value out of the page for good.
export function shownOnce(title, value, note) {
  const code = h("code", { class: "secret", "data-secret": "" }, value);
  const panel = h("section", { class: "shown-once", "aria-label": title },
    h("h3", {}, title),
    h("p", {}, note || "Copy it now: it is shown this once and cannot be read again."),
    code,
    h("div", { class: "actions" },
      action("Copy", async () => {
        await navigator.clipboard.writeText(value);
        notify("Copied.");
      }),
      h("button", { type: "button", class: "primary", onclick: () => { value = null; panel.remove(); notify("Done: the value is no longer on the page."); } }, "Done")));
  return panel;
}
