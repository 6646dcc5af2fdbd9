"""The TypeScript, Python and C# DTOs the gateway serves agree with its OpenAPI document field for field (issue 28).

Each language's file is read back as its own users' tools would see it (the TypeScript and C# classes by their
declarations, the Python module by importing it and asking dataclasses_json what it reads and writes), and every
operation's request is compared with the parameters and body OpenAPI documents for its route, every response with
the answer's schema, and every type they hold with its schema: the same fields (by name, in any case), each of the
same kind (text, number, true/false, list, object)."""
import dataclasses
import re
import sys
import types
import typing
from datetime import datetime

import pytest

from sms.entrypoints import openapi
from sms.entrypoints.native_types import csharp, python, typescript
from sms.entrypoints.native_types.model import metadata_types
from sms.entrypoints.native_types.options import parse
from sms.entrypoints.operations import OPERATIONS

# -- each language's classes as {name: (base or None, {field in lower case: kind})} --------------------------------------


def typescript_classes(text: str) -> dict[str, tuple[str | None, dict[str, str]]]:
    classes = {}
    for name, base, body in re.findall(r"^export class (\w+)(?: extends (\w+))?[^\n]*\n\{\n(.*?)^\}", text, re.M | re.S):
        fields = {}
        for prop, kind in re.findall(r"^ {4}public (\w+)[?!]?: (.+?)(?: = [^;]+)?;$", body, re.M):
            fields[prop.lower()] = ("array" if kind.endswith("[]") else kind if kind in ("string", "number", "boolean")
                                    else "object")  # a class, or a dictionary: { [index:string]: number; }
        classes[name] = (base or None, fields)
    return classes


def _python_kind(annotation) -> str:
    if typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    origin = typing.get_origin(annotation)
    if origin is list:
        return "array"
    if origin is dict or dataclasses.is_dataclass(annotation):
        return "object"
    return {str: "string", int: "number", float: "number", bool: "boolean", datetime: "string"}[annotation]


def python_classes(text: str) -> dict[str, tuple[str | None, dict[str, str]]]:
    module = types.ModuleType("gateway_dtos")
    sys.modules["gateway_dtos"] = module  # dataclasses_json resolves the annotations through the module
    try:
        exec(compile(text, "gateway_dtos.py", "exec"), module.__dict__)
        classes = {}
        for name, cls in vars(module).items():
            if isinstance(cls, type) and cls.__module__ == "gateway_dtos" and dataclasses.is_dataclass(cls):
                hints = typing.get_type_hints(cls)
                json_names = list(cls().to_dict(encode_json=False))  # what it writes and reads, after field_name=...
                kinds = [_python_kind(hints[f.name]) for f in dataclasses.fields(cls)]
                base = next((b.__name__ for b in cls.__bases__ if dataclasses.is_dataclass(b)), None)
                classes[name] = (base, {n.lower(): k for n, k in zip(json_names, kinds, strict=True)})
        return classes
    finally:
        del sys.modules["gateway_dtos"]


def _csharp_kind(kind: str) -> str:
    kind = kind.rstrip("?")
    if kind.startswith("List<") or kind.endswith("[]"):
        return "array"
    return {"string": "string", "Guid": "string", "DateTime": "string", "int": "number", "long": "number", "double": "number",
            "decimal": "number", "bool": "boolean"}.get(kind, "object")


def csharp_classes(text: str) -> dict[str, tuple[str | None, dict[str, str]]]:
    classes = {}
    for name, inherits, body in re.findall(r"^ {4}public (?:partial )?class (\w+)\n(?: {8}: ([^\n]+)\n)? {4}\{\n(.*?)^ {4}\}",
                                           text, re.M | re.S):
        base = next((b.strip() for b in inherits.split(",") if b.strip() and not re.match(r"I[A-Z]", b.strip())), None)
        fields = {prop.lower(): _csharp_kind(kind) for kind, prop in
                  re.findall(r"^ {8}public (?:virtual )?(.+?) (\w+) \{ get; set; \}", body, re.M)}
        classes[name] = (base, fields)
    return classes


def with_inherited(classes: dict, name: str) -> dict[str, str]:
    base, fields = classes[name]
    return {**(with_inherited(classes, base) if base else {}), **fields}


# -- what OpenAPI documents ----------------------------------------------------------------------------------------------


def _kinds(schema: dict, schemas: dict) -> set[str]:
    options = [o for o in schema.get("anyOf", schema.get("oneOf", [schema])) if o.get("type") != "null"]
    found = set()
    for option in options:
        if "$ref" in option or option.get("type") == "object":
            found.add("object")
        elif option.get("type") in ("integer", "number"):
            found.add("number")
        else:
            found.add(option["type"])
    return found


def _component(ref: str, schemas: dict) -> tuple[str, dict]:
    name = ref.rsplit("/", 1)[-1]
    return re.sub(r"-(Input|Output)$", "", name), schemas[name]


def _single(schema: dict) -> str:
    """The one model a body or an answer is: the first of a oneOf (the estimate's; the others are its batch's)."""
    return schema["$ref"] if "$ref" in schema else schema["oneOf"][0]["$ref"]


def documented_operations() -> dict[str, tuple[dict[str, set[str]], str]]:
    """Each operation's documented request fields (lower case -> kinds) and its answer's schema name."""
    document = openapi.document()
    schemas = document["components"]["schemas"]
    found = {}
    for op in OPERATIONS:
        route = op.routes[0]
        described = document["paths"]["/" + route.path][op.method.lower()]
        fields = {p["name"].lower(): _kinds(p["schema"], schemas) for p in described["parameters"]
                  if p["in"] in ("path", "query") and p["name"] != "format"}
        body = described.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            fields |= {k.lower(): _kinds(v, schemas) for k, v in _component(_single(body), schemas)[1]["properties"].items()}
        answer = described["responses"]["200"]["content"]["application/json"]["schema"]
        found[op.name] = (fields, _component(_single(answer), schemas)[0])
    return found


def documented_types() -> dict[str, dict[str, set[str]]]:
    schemas = openapi.document()["components"]["schemas"]
    return {_component(name, schemas)[0]: {k.lower(): _kinds(v, schemas) for k, v in schema.get("properties", {}).items()}
            for name, schema in schemas.items() if schema.get("type") == "object"}


def agree(language: str, name: str, fields: dict[str, str], documented: dict[str, set[str]]) -> None:
    assert set(fields) == set(documented), f"{language} {name}: {sorted(set(fields) ^ set(documented))}"
    for field, kind in fields.items():
        assert kind in documented[field], f"{language} {name}.{field}: {kind}, OpenAPI {documented[field]}"


LANGUAGES = {"typescript": (typescript.render, typescript_classes), "python": (python.render, python_classes),
             "csharp": (csharp.render, csharp_classes)}


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_dto_agrees_with_openapi_field_for_field(language):
    render, read = LANGUAGES[language]
    options = parse({})
    classes = read(render(metadata_types("http://h", options), options))
    operations, schemas = documented_operations(), documented_types()
    compared = set()
    for op in OPERATIONS:
        request, answer = operations[op.name]
        agree(language, op.name, with_inherited(classes, op.name), request)
        assert op.response.__name__ == answer
        compared |= {op.name}
    for name, documented in schemas.items():
        if name in ("ErrorResponse", "ResponseStatus", "ResponseError"):
            continue  # ServiceStack's own, which its client libraries declare
        assert name in classes, f"{language}: no class {name}"
        agree(language, name, with_inherited(classes, name), documented)
        compared.add(name)
    # Nothing a language declares escapes the comparison but the bases the compared ones inherit from.
    bases = {classes[n][0] for n in compared if classes[n][0]}
    assert set(classes) - compared <= bases, f"{language}: not in OpenAPI: {sorted(set(classes) - compared - bases)}"
