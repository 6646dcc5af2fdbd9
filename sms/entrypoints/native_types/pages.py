"""ServiceStack's metadata pages, from the MetadataTypes model: /metadata lists every operation and links each
one's page, /{format}/metadata?op=Name shows the operation (routes, its request's and response's fields, a sample
request), and `&lang=` its DTOs in a language, with the link to the /types file a tool adds as a reference.

The layout follows ServiceStack v8.8's (Metadata/IndexOperations.html, OperationControl.html): the seed's page,
tests/golden/SMSSend-metadata.txt (the seed), is such a page for SMSSend. Every text in them is escaped: descriptions and
names come from the code, but the page is HTML and `op` comes from the URL.
"""
from __future__ import annotations

import html
import json
from typing import Any, Callable
from urllib.parse import quote

from ...wire import jsv
from .csharp import property_type  # ServiceStack's pages name types as C# does
from .model import metadata_types
from .names import camel_case
from .options import Language, Options, parse

SERVICE_NAME = "SMS Gateway API"
_FORMATS = ("json", "jsv")
_LANGUAGES = ((Language.CSHARP, "C#"), (Language.TYPESCRIPT, "TypeScript"), (Language.PYTHON, "Python"))
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem}"
          "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}"
          "pre{background:#f6f6f6;padding:.75rem;overflow:auto}nav a{margin-right:1rem}")


def _page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>\n<h1>{SERVICE_NAME}</h1>\n{body}\n</body></html>\n")


def index(meta: dict[str, Any], root: str) -> str:
    """The operations, each linking its page in every format."""
    rows = "".join(
        f'<tr><th><span class="icons"><i class="auth" title="Requires Authentication"></i></span>{html.escape(name)}</th>'
        + "".join(f'<td><a href="/{fmt}/metadata?op={quote(name)}">{fmt.upper()}</a></td>' for fmt in _FORMATS) + "</tr>"
        for name in (op["request"]["name"] for op in meta["operations"])
    )
    links = "".join(f'<li><a href="/types/{language.value}">{label}</a></li>' for language, label in _LANGUAGES)
    return _page(SERVICE_NAME, f"""<p>The following operations are available. Every one requires authentication: an API key, as
<code>Authorization: Bearer &lt;key&gt;</code>.</p>
<h3>Operations</h3>
<table>{rows}</table>
<h3>Add ServiceStack Reference</h3>
<p>Typed DTOs of every operation, for ServiceStack's clients (<code>npx typescript-ref {html.escape(root)}</code>,
<code>x python {html.escape(root)}</code>, <code>x csharp {html.escape(root)}</code>):</p>
<ul>{links}<li><a href="/types/metadata">Metadata (JSON)</a></li></ul>
<p>Also: <a href="/api/openapi.json">OpenAPI</a>, <a href="/api/metadata">the SMSSend guide with samples</a>.</p>""")


def not_found(root: str, name: str) -> str:
    return _page("Not found", f'<p>No operation named <b>{html.escape(name)}</b>. <a href="/metadata">&lt;back to all web services</a></p>')


def _find(meta: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((op for op in meta["operations"] if op["request"]["name"].lower() == name.lower()), None)


def _parameters(described: dict[str, Any], where: Callable[[str], str], types: dict[str, dict[str, Any]]) -> str:
    """ServiceStack's parameter table of a type: its own fields and those it inherits."""
    rows = []
    chain, current = [], described
    while current is not None:
        chain.insert(0, current)
        current = types.get(current.get("inherits", {}).get("name", ""))
    for part in chain:
        for prop in part["properties"]:
            rows.append(f"<tr><td>{html.escape(prop['name'])}</td><td>{where(prop['name'])}</td>"
                        f"<td>{html.escape(property_type(prop))}</td><td>{'Yes' if prop.get('isRequired') else 'No'}</td>"
                        f"<td>{html.escape(prop.get('description', ''))}</td></tr>")
    caption = f"<b>{html.escape(described['name'])}</b> Parameters:"
    return (f"<table><caption>{caption}</caption><tr><th>Name</th><th>Parameter</th><th>Data Type</th><th>Required</th>"
            f"<th>Description</th></tr>{''.join(rows)}</table>")


def _sample(described: dict[str, Any], types: dict[str, dict[str, Any]], depth: int = 0) -> dict[str, Any]:
    """A request or response with a placeholder in every field, as ServiceStack's pages show them (PascalCase)."""
    sample: dict[str, Any] = {}
    base = types.get(described.get("inherits", {}).get("name", ""))
    if base is not None:
        sample |= _sample(base, types, depth)
    for prop in described["properties"]:
        sample[prop["name"]] = _placeholder(prop["type"], prop.get("genericArgs", []), types, depth)
    return sample


def _placeholder(kind: str, args: list[str], types: dict[str, dict[str, Any]], depth: int) -> Any:
    if kind == "Nullable`1":
        return _placeholder(args[0], [], types, depth)
    if kind == "List`1":
        return [_placeholder(args[0], [], types, depth)]
    if kind == "Dictionary`2":
        return {"String": _placeholder(args[1], [], types, depth)}
    if kind in types and depth < 3:
        return _sample(types[kind], types, depth + 1)
    return {"Boolean": False, "Int32": 0, "Int64": 0, "Double": 0.0, "Guid": "00000000000000000000000000000000",
            "DateTime": "0001-01-01T00:00:00.0000000Z"}.get(kind, kind if kind in ("String",) else None)


def _camel(data: Any) -> Any:
    """The sample's names as JSON writes them (ServiceStack's camelCase: SMSModel -> smsModel)."""
    if isinstance(data, dict):
        return {camel_case(key) if key != "String" else key: _camel(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_camel(item) for item in data]
    return data


def operation(meta: dict[str, Any], root: str, fmt: str, name: str, language: str | None,
              renderers: dict[Language, Callable[[dict[str, Any], Options], str]]) -> str | None:
    """An operation's page in `fmt`, or its DTOs in `language`; None when there is no such operation."""
    op = _find(meta, name)
    if op is None:
        return None
    request, response = op["request"], op.get("response")
    name = request["name"]
    types = {t["name"]: t for t in meta["types"]}
    routes = "".join(f"<tr><th>{html.escape(r['verbs'])}</th><th>{html.escape(r['path'])}</th></tr>" for r in op["routes"])
    path_values = {part[1:-1].lower() for r in op["routes"] for part in r["path"].split("/") if part.startswith("{")}
    in_query = op["method"] in ("GET", "DELETE")

    def where(field: str) -> str:
        return "path" if field.lower() in path_values else "query" if in_query else "body"

    tabs = f'<a href="/{fmt}/metadata?op={quote(name)}">Metadata</a>' + "".join(
        f'<a href="/{fmt}/metadata?op={quote(name)}&amp;lang={lang.value}">{label}</a>' for lang, label in _LANGUAGES)
    chosen = next((lang for lang, _ in _LANGUAGES if language and lang.value == language.lower()), None)
    if chosen is not None:
        # The operation's own types, without the header, as ServiceStack's language tab shows them: as types only (no
        # routes, no IReturn), its response first, as the seed's page shows SMSSend's.
        options = parse({"IncludeTypes": f"{name}.*", "WithoutOptions": "true"})
        included = metadata_types(root, options)
        [own] = included["operations"]
        as_types = {**included, "types": [*([own["response"]] if "response" in own else []), own["request"], *included["types"]],
                    "operations": []}
        code = renderers[chosen](as_types, options)
        label = dict(_LANGUAGES)[chosen]
        content = (f'<pre><code class="language-{chosen.value}">{html.escape(code)}</code></pre>'
                   f'<p><a href="/types/{chosen.value}?IncludeTypes={quote(name)}.*">{label} {html.escape(name)} DTOs</a></p>')
    else:
        needed = [t for t in meta["types"] if t["name"] in _referenced_names(request, response, types)]
        content = (_parameters(request, where, types) + (_parameters(response, lambda _: "form", types) if response else "")
                   + "".join(_parameters(t, lambda _: "form", types) for t in needed))
    body_sample = _sample(request, types)
    route = op["routes"][0]["path"] if op["routes"] else f"/api/{name}"
    if fmt == "jsv":
        media, text = "text/jsv", jsv.dumps(body_sample)
        answer = jsv.dumps(_sample(response, types)) if response else ""
    else:
        media, text = "application/json", json.dumps(_camel(body_sample), indent=2)
        answer = json.dumps(_camel(_sample(response, types)), indent=2) if response else ""
    sample_request = f"{op['method']} {route} HTTP/1.1\nHost: {urlhost(root)}\nAccept: {media}\n"
    if op["method"] in ("POST", "PUT"):
        sample_request += f"Content-Type: {media}\nContent-Length: length\n\n{text}"
    sample_response = f"HTTP/1.1 200 OK\nContent-Type: {media}\nContent-Length: length\n\n{answer}"
    description = html.escape(request.get("description", ""))
    return _page(f"{name} | {SERVICE_NAME}", f"""<a href="/metadata">&lt;back to all web services</a>
<h2>{html.escape(name)}</h2>
<h3 id="desc">{description}</h3>
<table><caption>Requires Authentication</caption><tr><td>an API key: Authorization: Bearer &lt;key&gt;</td></tr></table>
<table><caption>The following routes are available for this service:</caption>{routes}</table>
<nav>{tabs}</nav>
{content}
<p>To override the Content-type in your clients, use the HTTP <b>Accept</b> Header, append the <b>.{fmt}</b> suffix or
<b>?format={fmt}</b></p>
<h3>HTTP + {fmt.upper()}</h3>
<p>The following are sample HTTP requests and responses. The placeholders shown need to be replaced with actual values.</p>
<pre>{html.escape(sample_request)}</pre>
<pre>{html.escape(sample_response)}</pre>""")


def urlhost(root: str) -> str:
    return root.split("://", 1)[-1]


def _referenced_names(request: dict[str, Any], response: dict[str, Any] | None, types: dict[str, dict[str, Any]]) -> set[str]:
    """The names of the types a request and its response need, transitively (bases and fields)."""
    seen: set[str] = set()
    stack = [request, *([response] if response else [])]
    while stack:
        described = stack.pop()
        names = [described.get("inherits", {}).get("name", "")]
        names += [n for p in described["properties"] for n in (p["type"], *p.get("genericArgs", []))]
        for n in names:
            if n in types and n not in seen:
                seen.add(n)
                stack.append(types[n])
    return seen
