"""Add ServiceStack Reference: /types/{language} and /types/metadata, and ServiceStack's metadata pages.

ServiceStack's tools fetch `/types/typescript` (`typescript-ref`), `/types/python` and `/types/csharp` (`x`,
`npx get-dtos`) from the service's root, write the answer verbatim once it holds "Options:", and later send the
file's uncommented options back as the query string to update it (research: servicestack-cli src/index.ts,
dotnet-app src/Web/Startup.cs). No key is needed, as ServiceStack serves its metadata to anyone by default.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import azure.functions as func

from ..logs import log_unexpected
from .native_types import csharp, pages, python, typescript
from .native_types.model import metadata_types
from .native_types.options import Language, Options, header, parse

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


def _last_segment(req: func.HttpRequest) -> str:
    return urlsplit(req.url).path.rstrip("/").rsplit("/", 1)[-1].lower()


def types(req: func.HttpRequest) -> func.HttpResponse:
    """GET /types (where each language is), /types/metadata (the model every language is rendered from) and
    /types/{typescript,python,csharp} (the DTOs, with their options header)."""
    options = parse(req.params)
    root = base_url(req, options)
    which = _last_segment(req)
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
    except Exception as error:  # a bug, not the request: the tools then say "Invalid Response", as there is no "Options:"
        log_unexpected(log, f"/types/{which} failed", error)
        return func.HttpResponse("An unexpected error occurred", status_code=500, headers=_TEXT)


def metadata_page(req: func.HttpRequest) -> func.HttpResponse:
    """GET /metadata: every operation, linking its page; /json/metadata?op=Name (and /jsv/): the operation's page."""
    options = parse({})
    root = base_url(req, options)
    meta = metadata_types(root, options)
    operation = req.params.get("op")
    fmt = urlsplit(req.url).path.strip("/").split("/")[0].lower()
    if operation is None or fmt == "metadata":
        return func.HttpResponse(pages.index(meta, root), status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})
    language = req.params.get("lang")
    page = pages.operation(meta, root, fmt, operation, language, _RENDERERS)
    status = 200 if page is not None else 404
    body = page if page is not None else pages.not_found(root, operation)
    return func.HttpResponse(body, status_code=status, headers={"Content-Type": "text/html; charset=utf-8"})
