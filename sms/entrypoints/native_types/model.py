"""The service's DTOs and operations in ServiceStack's MetadataTypes shape: what /types/metadata answers and what
every /types/{language} file is rendered from.

Built from the operation list (sms/entrypoints/operations.py: the route table and the request and response DTOs),
so a field or an operation added there appears in every language by itself. The shape is ServiceStack's own
(ServiceStack.Client MetadataTypes.cs: MetadataTypes, MetadataType, MetadataPropertyType, MetadataOperationType),
camelCase with empty values left out, as ServiceStack.Text writes it; tests/unit/test_native_types.py pins it.

A property's type is its .NET name (String, Int32, Nullable`1 with genericArgs ["Int32"], List`1, Dictionary`2,
a DTO's name), read from the pydantic annotation: `int | None` is an Int32?, text a String, a model its name. A Guid
is text in Python: sms.wire.dto.DotNetType says where the C# type is Guid. A union of different types (a cap's
limit, segments or decimal text) is a String: ServiceStack's clients read a JSON number into one.
"""
from __future__ import annotations

import functools
import types
import typing
from datetime import datetime
from typing import Any, Iterable, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ...wire.dto import DotNetType, ResponseError, ResponseStatus, WireModel
from ..operations import OPERATIONS, Operation
from .options import Options

# The namespace of the DTOs in C# (the original service's is not published: its page shows none).
NAMESPACE = "SMSGateway.ServiceModel"
SERVICESTACK = "ServiceStack"  # ServiceStack's own types (ResponseStatus, IGet ...): every client library has them
_SYSTEM_TYPES: dict[type, tuple[str, bool]] = {  # Python type -> .NET type in System, whether a value type
    str: ("String", False), bool: ("Boolean", True), int: ("Int32", True), float: ("Double", True), datetime: ("DateTime", True),
}


def dotnet_name(name: str, field: FieldInfo) -> str:
    """A field's .NET (PascalCase) name: its validation alias, which JSV writes and errors name."""
    return field.validation_alias if isinstance(field.validation_alias, str) else name


def json_name(name: str, field: FieldInfo) -> str:
    """A field's JSON (camelCase) name: its serialization alias."""
    return field.serialization_alias if isinstance(field.serialization_alias, str) else name


def _type_of(annotation: Any, metadata: Iterable[Any] = ()) -> dict[str, Any]:
    """The .NET type of a Python annotation: {type, namespace, genericArgs?, isValueType?}."""
    marker = next((m for m in metadata if isinstance(m, DotNetType)), None)
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        return _type_of(annotation, [*extra, *metadata])
    args = typing.get_args(annotation)
    nullable = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = tuple(a for a in args if a is not type(None))
        nullable = True
        if len(args) != 1:  # text or a number: read as text
            return {"type": "String", "namespace": "System"}
        annotation, args = args[0], typing.get_args(args[0])
    if marker is not None:
        inner = {"type": marker.name, "namespace": "System", "isValueType": True}
        return _nullable(inner) if marker.nullable else inner
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return {"type": "String", "namespace": "System"}
    if origin is list:
        return {"type": "List`1", "namespace": "System.Collections.Generic", "genericArgs": [_arg(args[0])]}
    if origin is dict:
        return {"type": "Dictionary`2", "namespace": "System.Collections.Generic", "genericArgs": [_arg(args[0]), _arg(args[1])]}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"type": annotation.__name__, "namespace": NAMESPACE}
    name, value_type = _SYSTEM_TYPES[annotation]
    inner = {"type": name, "namespace": "System", **({"isValueType": True} if value_type else {})}
    return _nullable(inner) if nullable and value_type else inner


def _nullable(inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Nullable`1", "namespace": "System", "genericArgs": [inner["type"]], "isValueType": True}


def _arg(annotation: Any) -> str:
    """A generic argument's name: a nullable one is its value's (a Dictionary<string,string> may hold nulls anyway)."""
    described = _type_of(annotation)
    return described["genericArgs"][0] if described["type"] == "Nullable`1" else described["type"]


def _models_of(annotation: Any) -> list[type[WireModel]]:
    """The DTO classes an annotation refers to (in a list, a dict, an Optional ...)."""
    if isinstance(annotation, type) and issubclass(annotation, WireModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_of(arg)]


def _base(model: type[WireModel]) -> type[WireModel] | None:
    """The DTO a model inherits its fields from, when there is exactly one (C# has single inheritance: a model
    with two, CommResponse, declares all its fields itself)."""
    bases = [b for b in model.__bases__ if issubclass(b, WireModel) and b is not WireModel]
    return bases[0] if len(bases) == 1 else None


def _own_fields(model: type[WireModel]) -> dict[str, FieldInfo]:
    base = _base(model)
    return {name: f for name, f in model.model_fields.items() if base is None or name not in base.model_fields}


def _property(name: str, field: FieldInfo) -> dict[str, Any]:
    prop = {"name": dotnet_name(name, field), **_type_of(field.annotation, field.metadata)}
    if field.is_required():
        prop["isRequired"] = True
    if field.description:
        prop["description"] = field.description
    return prop


def _type(model: type[WireModel], namespace: str = NAMESPACE) -> dict[str, Any]:
    described: dict[str, Any] = {"name": model.__name__, "namespace": namespace}
    base = _base(model)
    if base is not None:
        described["inherits"] = {"name": base.__name__, "namespace": namespace}
    described["implements"] = []
    described["properties"] = [_property(name, field) for name, field in _own_fields(model).items()]
    return described


def _request_type(op: Operation) -> dict[str, Any]:
    described = _type(op.request)
    if op.marker:
        described["implements"] = [{"name": op.marker, "namespace": SERVICESTACK}]
    described["description"] = op.description
    described["attributes"] = [{"name": "Api", "args": [{"name": "Description", "type": "String", "value": op.description}]}]
    return described


def _referenced(model: type[WireModel]) -> list[type[WireModel]]:
    """The DTOs a model needs: its base, then its own fields' types."""
    base = _base(model)
    return ([base] if base else []) + [m for f in _own_fields(model).values() for m in _models_of(f.annotation)]


def _closure(models: Iterable[type[WireModel]]) -> list[type[WireModel]]:
    """Every DTO the given ones need, transitively, each after what it needs."""
    seen: list[type[WireModel]] = []

    def visit(model: type[WireModel]) -> None:
        if model not in seen:
            seen.append(model)  # first, so that a cycle ends
            for needed in _referenced(model):
                visit(needed)
            seen.remove(model)
            seen.append(model)

    for model in models:
        visit(model)
    return seen


@functools.cache
def _everything() -> tuple[tuple[Operation, ...], tuple[type[WireModel], ...], tuple[type[WireModel], ...]]:
    """The operations, the DTOs that are no operation's request or response, and every DTO the operations use: the
    last two each after the DTOs it needs."""
    operation_types = {m for op in OPERATIONS for m in (op.request, op.response)}
    needed = _closure(m for op in OPERATIONS for m in (op.request, op.response))
    return OPERATIONS, tuple(m for m in needed if m not in operation_types), tuple(needed)


def _stray_responses(operations: list[Operation], names: set[str], options: Options) -> list[type[WireModel]]:
    """The operations' responses IncludeTypes took in that no included operation answers with (GetWebhookEndpoints'
    list holds WebhookEndpointState, AddWebhookEndpoint's response): declared as types, so that the file has every type
    it names, as ServiceStack's RemoveIgnoredTypes does (not when ExcludeTypes drops `types`)."""
    if not options.names("IncludeTypes") or "types" in options.names("ExcludeTypes"):
        return []
    every_operation, _, in_order = _everything()
    responses = {op.response for op in every_operation} - {op.response for op in operations} - {op.request for op in every_operation}
    return [m for m in in_order if m in responses and m.__name__ in names]


def _chosen(options: Options) -> tuple[list[Operation], set[str]]:
    """The operations and type names IncludeTypes and ExcludeTypes leave (ServiceStack's NativeTypesMetadata):
    `Name` a type (a request brings its response), `Name.*` a type and everything it needs, `{tag}` the operations
    so tagged with everything they need; ExcludeTypes drops names, and `services` or `types` every operation or
    every other type."""
    operations, others, _ = _everything()
    all_names = {m.__name__ for m in others} | {m.__name__ for op in operations for m in (op.request, op.response)}
    by_name = {op.request.__name__: op for op in operations}
    models = {m.__name__: m for m in others} | {m.__name__: m for op in operations for m in (op.request, op.response)}
    include = options.names("IncludeTypes")
    if include:
        names: set[str] = set()
        for item in include:
            if item.startswith("{") and item.endswith("}"):
                tags = {t.strip() for t in item[1:-1].split(",")}
                roots = [m for op in operations if op.tag in tags for m in (op.request, op.response)]
            elif item.endswith(".*"):
                root = models.get(item[:-2])
                roots = [root, *([by_name[root.__name__].response] if root and root.__name__ in by_name else [])] if root else []
            else:
                root = models.get(item)
                names |= {item} if root else set()
                names |= {by_name[item].response.__name__} if item in by_name else set()
                continue
            names |= {m.__name__ for m in _closure(roots)}
    else:
        names = set(all_names)
    excluded = set(options.names("ExcludeTypes"))
    names -= excluded
    if "types" in excluded:
        names &= {op.request.__name__ for op in operations} | {op.response.__name__ for op in operations}
    chosen_ops = [op for op in operations if op.request.__name__ in names and "services" not in excluded]
    return chosen_ops, names


def _operation(op: Operation, names: set[str], add_response_status: bool) -> dict[str, Any]:
    described: dict[str, Any] = {"request": _request_type(op)}
    if op.response.__name__ in names:
        response = _type(op.response)
        if add_response_status and not any(p["name"] == "ResponseStatus" for p in response["properties"]):
            response["properties"].append({"name": "ResponseStatus", "type": "ResponseStatus", "namespace": SERVICESTACK})
        described["response"] = response
    described |= {
        "actions": [op.method], "method": op.method,
        "returnType": {"name": op.response.__name__, "namespace": NAMESPACE},
        "routes": [{"path": "/" + route.path, "verbs": op.method} for route in op.routes],
        "requiresAuth": True, "tags": [op.tag],
    }
    return described


def metadata_types(base_url: str, options: Options) -> dict[str, Any]:
    """ServiceStack's MetadataTypes for this service, as the options choose: config, namespaces, the types the
    operations need (each after the types it needs), and the operations (request, response, verb, routes)."""
    operations, names = _chosen(options)
    add_response_status = options.flag("AddResponseStatus", False)
    _, others, in_order = _everything()
    strays = _stray_responses(operations, names, options)
    described_types = [_type(m) for m in in_order if (m in others and m.__name__ in names) or m in strays]
    if add_response_status and any(op.response.__name__ in names for op in operations):
        # ServiceStack's own ResponseStatus: TypeScript declares it, Python and C# import it from ServiceStack's library.
        described_types += [_type(ResponseError, SERVICESTACK), _type(ResponseStatus, SERVICESTACK)]
    described_ops = [_operation(op, names, add_response_status) for op in operations]
    namespaces = sorted({t["namespace"] for t in described_types}
                        | {p["namespace"] for t in described_types for p in t["properties"]}
                        | {p["namespace"] for op in described_ops for t in (op["request"], op.get("response")) if t
                           for p in t["properties"]} | ({NAMESPACE} if described_ops else set()))
    config = {"baseUrl": base_url, "addResponseStatus": add_response_status,
              "addServiceStackTypes": options.flag("AddServiceStackTypes", True),
              "addDescriptionAsComments": options.flag("AddDescriptionAsComments", True),
              "makePropertiesOptional": options.flag("MakePropertiesOptional", False),
              "includeTypes": list(options.names("IncludeTypes")), "excludeTypes": list(options.names("ExcludeTypes"))}
    return {"config": config, "namespaces": namespaces, "types": described_types, "operations": described_ops}
