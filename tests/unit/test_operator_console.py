"""The operator console's files as the gateway serves them (issue 29): the page and its ES modules, each with a
Content-Security-Policy that lets it run nothing but them; 304 while unchanged; nothing outside the folder."""
import re

import azure.functions as func
import pytest

from sms.entrypoints import operator_console
from sms.entrypoints.operator_console import ASSETS, CONTENT_SECURITY_POLICY, PAGE
from sms.entrypoints.routes import CONSOLE_ASSET_PATTERN

FILES = sorted(path.name for path in ASSETS.iterdir())


async def get(gw, name: str | None, headers: dict | None = None):
    route, params = ("console", {}) if name is None else ("console_asset", {"asset": name})
    return await gw.functions[route](func.HttpRequest("GET", f"http://h/console/{name or ''}", headers=headers or {}, route_params=params,
                                                     body=b""))


def directives(policy: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


async def test_the_page_loads_its_modules_and_styles_from_the_console_alone(gw):
    response = await get(gw, None)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    html = response.get_body().decode()
    assert re.findall(r'<script type="module" src="([^"]+)"></script>', html) == ["/console/app.js"]
    assert "<script>" not in html and not re.search(r"\son\w+=", html)  # no inline script, no inline handler
    for link in re.findall(r'(?:src|href)="([^"#]+)"', html):
        assert link.startswith("/console/") and link.removeprefix("/console/") in FILES, link


def test_the_policy_runs_only_the_consoles_own_scripts_and_refuses_framing_and_html_strings():
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no other origin
    assert policy["frame-ancestors"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'" and policy["trusted-types"] == "'none'"
    assert policy["connect-src"] == "'self'" and policy["base-uri"] == "'none'"
    assert all("unsafe" not in value and "*" not in value and "http" not in value for value in policy.values())


@pytest.mark.parametrize("name", [None, *FILES])
async def test_every_file_is_served_with_its_type_the_policy_and_an_etag(gw, name):
    response = await get(gw, name)
    assert response.status_code == 200
    expected = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    assert response.headers["Content-Type"].split(";")[0] == expected[(name or PAGE).rsplit(".", 1)[1]]
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.get_body() == (ASSETS / (name or PAGE)).read_bytes()
    again = await get(gw, name, {"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.get_body() == b"" and again.headers["ETag"] == response.headers["ETag"]
    changed = await get(gw, name, {"If-None-Match": '"something-else"'})
    assert changed.status_code == 200


@pytest.mark.parametrize("name", ["../function_app.py", "..%2Fconfig.py", "nope.js", "index.htm", "APP.JS", "app.js/", "style.css.map",
                                  "/etc/passwd", "a/b.js", ""])
async def test_anything_but_a_console_file_is_a_404_with_the_policy(gw, name):
    response = await get(gw, name) if name else await gw.functions["console_asset"](
        func.HttpRequest("GET", "http://h/console/", route_params={"asset": ""}, body=b""))
    if name == "":  # no asset named: the page, as /console/ is
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
        return
    assert response.status_code == 404
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["Content-Type"].startswith("text/plain")


def test_every_file_the_console_ships_can_be_served_and_every_module_it_imports_ships():
    for name in FILES:
        assert name == PAGE or re.fullmatch(CONSOLE_ASSET_PATTERN, name), f"{name} could never be served"
    for name in (n for n in FILES if n.endswith(".js")):
        source = (ASSETS / name).read_text()
        for imported in re.findall(r'^import .* from "\./([^"]+)";$', source, flags=re.M):
            assert imported in FILES, f"{name} imports {imported}, which the console does not ship"


@pytest.mark.parametrize("name", [n for n in FILES if n.endswith(".js")])
def test_no_module_turns_text_into_html_or_code(name):
    """Message bodies and replies are anyone's text. The browser refuses these under the policy's Trusted Types;
    this keeps them out of the source too, so a page never depends on one that would fail."""
    source = (ASSETS / name).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute(\"on",
                 "createContextualFragment", "DOMParser", "srcdoc", "javascript:", "localStorage"):
        assert sink not in source, f"{name} uses {sink}"


def test_files_are_read_once(monkeypatch):
    operator_console._asset.cache_clear()
    reads = []
    original = type(ASSETS).read_bytes
    monkeypatch.setattr(type(ASSETS), "read_bytes", lambda self: reads.append(self.name) or original(self))
    for _ in range(3):
        operator_console.serve(func.HttpRequest("GET", "http://h/console/app.js", route_params={"asset": "app.js"}, body=b""))
    assert reads == ["app.js"]


def test_names_the_console_does_not_ship_are_not_remembered():
    """Review (issue 29): the file cache kept every name asked for, a None for each the console lacks, without bound:
    anyone, with no key, could grow a worker's memory one request (/console/x1.js, /console/x2.js, ...) at a time."""
    operator_console._asset.cache_clear()
    for i in range(1000):
        name = f"no-such-file-{i}.js"
        assert operator_console.serve(func.HttpRequest("GET", f"http://h/console/{name}", route_params={"asset": name},
                                                       body=b"")).status_code == 404
    assert operator_console._asset.cache_info().currsize <= len(FILES)


@pytest.mark.parametrize("given", ["*", "W/{etag}", '"other", {etag}', "W/\"other\", W/{etag}"])
async def test_any_form_of_a_matching_if_none_match_is_a_304(gw, given):
    etag = (await get(gw, "app.js")).headers["ETag"]
    assert (await get(gw, "app.js", {"If-None-Match": given.format(etag=etag)})).status_code == 304


@pytest.mark.parametrize("route, params, status", [
    ("metadata", {}, 200), ("metadata_operations", {}, 200), ("json_metadata", {"op": "SMSSend"}, 200),
    ("jsv_metadata", {"op": "GetSmsStatus", "lang": "typescript"}, 200), ("json_metadata", {"op": "NoSuchOperation"}, 404),
])
async def test_the_gateways_other_html_pages_on_the_consoles_origin_run_nothing_and_cannot_be_framed(gw, route, params, status):
    """The console's key sits in the tab's session storage on this origin: the gateway's other HTML pages (the metadata
    pages) load and run nothing, take no framing, and are never sniffed as anything else."""
    response = await gw.functions[route](func.HttpRequest("GET", "http://h/metadata", params=params, body=b""))
    assert response.status_code == status and response.headers["Content-Type"].startswith("text/html")
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == "'none'" and "script-src" not in policy  # so no script at all
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in response.get_body().decode().lower()
