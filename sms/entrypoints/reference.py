"""Add ServiceStack Reference: /types/{language} and /types/metadata, and ServiceStack's metadata pages.

ServiceStack's tools fetch `/types/typescript` (`typescript-ref`), `/types/python` and `/types/csharp` (`x`,
`npx get-dtos`) from the service's root, write the answer verbatim once it holds "Options:", and later send the
file's uncommented options back as the query string to update it (github.com/ServiceStack/servicestack-cli src/index.ts,
dotnet-app src/Web/Startup.cs). No key is needed, as ServiceStack serves its metadata to anyone by default.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import azure.functions as func

from ..domain.errors import GatewayError
from ..logs import log_unexpected
from ..wire.http import error_response, html_page
from .native_types import csharp, pages, python, typescript
from .native_types.model import metadata_types
from .native_types.options import Language, Options, header, parse
from .routes import Route

log = logging.getLogger("sms.reference")

_RENDERERS = {Language.TYPESCRIPT: typescript.render, Language.PYTHON: python.render, Language.CSHARP: csharp.render}
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}  # as ServiceStack's NativeTypesService answers them
_JSON = {"Content-Type": "application/json; charset=utf-8"}


def base_url(req: func.HttpRequest, options: Options) -> str:
    """What a file's `BaseUrl:` says, which its updates are fetched from: the BaseUrl option, else the URL the client
    called. On Azure the front ends end TLS and pass the request on as http, saying the client's scheme in
    X-Forwarded-Proto (learn.microsoft.com/azure/app-service/configure-language-python#detect-https-session), so the
    scheme comes from there when it is given: a file fetched over https updates over https."""
    given = options.text("BaseUrl")
    if given:
        return given.rstrip("/")
    url = urlsplit(req.url)
    scheme = (req.headers.get("X-Forwarded-Proto") or url.scheme).split(",")[0].strip().lower()
    return f"{scheme if scheme in ('http', 'https') else url.scheme}://{url.netloc}"


def types(req: func.HttpRequest, path: str) -> func.HttpResponse:
    """GET /types (where each language is), /types/metadata (the model every language is rendered from) and
    /types/{typescript,python,csharp} (the DTOs, with their options header)."""
    which = path.rsplit("/", 1)[-1]  # the route's: types, metadata, typescript, python or csharp
    try:
        options = parse(req.params)
    except GatewayError as error:  # an option it cannot take: a 400 naming it (no "Options:", so the tools say so)
        return error_response(error)
    root = base_url(req, options)
    try:
        if which == "types":
            links = {"Metadata": "metadata", "CSharp": "csharp", "TypeScript": "typescript", "Python": "python"}
            body = json.dumps({name: f"{root}/types/{path}" for name, path in links.items()})
            return func.HttpResponse(body, status_code=200, headers=_JSON)
        meta = metadata_types(root, options)
        if which == "metadata":
            return func.HttpResponse(json.dumps(meta), status_code=200, headers=_JSON)
        language = Language(which)
        text = header(language, options, root) + _RENDERERS[language](meta, options)
        return func.HttpResponse(text, status_code=200, headers=_TEXT)
    except GatewayError as error:  # an option this language cannot take (a TypeScript GlobalNamespace that is no name)
        return error_response(error)
    except Exception as error:  # a bug, not the request: the tools then say "Invalid Response", as there is no "Options:"
        log_unexpected(log, f"/types/{which} failed", error)
        return func.HttpResponse("An unexpected error occurred", status_code=500, headers=_TEXT)


def metadata_page(req: func.HttpRequest, route: Route) -> func.HttpResponse:
    """GET /metadata: every operation, linking its page; /json/metadata?op=Name (and /jsv/): the operation's page."""
    options = parse({})
    root = base_url(req, options)
    meta = metadata_types(root, options)
    operation = req.params.get("op")
    if operation is None or route.format is None:
        return html_page(pages.index(meta, root))
    language = req.params.get("lang")
    page = pages.operation(meta, root, route.format.value, operation, language, _RENDERERS)
    status = 200 if page is not None else 404
    body = page if page is not None else pages.not_found(root, operation)
    return html_page(body, status)
