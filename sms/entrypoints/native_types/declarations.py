"""What every /types/{language} renderer takes from the MetadataTypes model (native_types/model.py): the types to
declare, each once, in the order its language wants, with what ServiceStack writes above each (its routes, then its
attributes), and what a property's .NET type is (a list, a dictionary, a value).

Two orders, as ServiceStack's generators have them (NativeTypes/*Generator.cs and NativeTypesMetadata.cs, v8.8):
- `by_dependencies` (TypeScript, Python, where a class must come after the classes it names): the non-operation
  types with each base before its subclasses, then the responses, then the requests, then reordered so that each
  type's dependencies come before it, depth-first: first a request's return type, then its base and the base's
  generic arguments, then its properties' types (their generic arguments in place of a generic type).
- `by_name` (C#, where order does not matter): by namespace, then name, compared as .NET's default string comparer
  does (culture-aware: letters alphabetically whatever their case, a lower-case letter before its capital).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

# .NET collection and dictionary types, as MetadataPropertyType names them (ServiceStack's ServiceMetadata lists).
COLLECTION_TYPES = frozenset({"List`1", "IList`1", "ICollection`1", "IEnumerable`1", "IReadOnlyList`1", "IReadOnlyCollection`1",
                              "HashSet`1", "ISet`1", "SortedSet`1", "Queue`1", "Stack`1"})
DICTIONARY_TYPES = frozenset({"Dictionary`2", "IDictionary`2", "IReadOnlyDictionary`2", "SortedDictionary`2",
                              "ConcurrentDictionary`2", "SortedList`2"})


@dataclass(frozen=True)
class Declaration:
    """A type to declare: a request (with its operation), a response, or any other type."""

    type: dict[str, Any]  # a MetadataType
    operation: dict[str, Any] | None = None  # a request's MetadataOperationType
    is_response: bool = False

    @property
    def name(self) -> str:
        return self.type["name"]

    @property
    def is_request(self) -> bool:
        return self.operation is not None

    @property
    def return_type(self) -> dict[str, Any] | None:
        """The request's return marker (IReturn<T>): {name, namespace, genericArgs?}."""
        return self.operation.get("returnType") if self.operation else None

    @property
    def returns_void(self) -> bool:
        return bool(self.operation and self.operation.get("returnsVoid"))

    def attributes(self) -> list[tuple[str, list[str]]]:
        """What ServiceStack writes above the declaration, each as its name and its arguments' text: one Route per
        route (the path, then the verbs when it has them), then the type's own attributes (Api ...)."""
        written = [("Route", [literal(route["path"])] + ([literal(route["verbs"])] if route.get("verbs") else []))
                   for route in (self.operation or {}).get("routes") or []]
        for attribute in self.type.get("attributes") or []:
            if attribute.get("constructorArgs"):
                written.append((attribute["name"], [argument(a) for a in attribute["constructorArgs"]]))
            else:
                written.append((attribute["name"], [f"{a['name']}={argument(a)}" for a in attribute.get("args") or []]))
        return written


def literal(text: str) -> str:
    """A string as an attribute argument: quoted, with quotes, backslashes and control characters escaped as in JSON
    (ServiceStack's ToEscapedString), other characters as they are."""
    return json.dumps(text, ensure_ascii=False)


def argument(arg: dict[str, Any]) -> str:
    """An attribute argument's value: text quoted, anything else (a number, true/false) as it is."""
    value = arg.get("value")
    if value is None:
        return "null"
    return literal(value) if arg.get("type") in ("String", "string") else str(value)


def declared_kind(prop: dict[str, Any]) -> str:
    """The .NET type a property is declared with: its own, but text for a value type that is not .NET's own (a struct
    travels as text unless ExportValueTypes, as ServiceStack's generators write it)."""
    kind = prop["type"]
    if prop.get("isValueType") and not prop.get("isEnum") and not prop["namespace"].startswith("System"):
        return "String"
    return kind


def is_collection(prop: dict[str, Any]) -> bool:
    """A list, set, array or dictionary property (not a string, and not a byte array, which is a blob)."""
    kind = prop["type"]
    return kind in COLLECTION_TYPES or kind in DICTIONARY_TYPES or (kind.endswith("[]") and kind != "Byte[]")


def is_dictionary(prop: dict[str, Any]) -> bool:
    return prop["type"] in DICTIONARY_TYPES


def _unique(meta: dict[str, Any], skip_namespaces: Iterable[str]) -> list[Declaration]:
    """Every type once, in ServiceStack's first order (GetAllTypesOrdered): the non-operation types as the model lists
    them, each base first, then the responses, then the requests. A type two operations answer with (GuardState ...)
    is declared once; a type that is an operation's request is declared as that request."""
    skip = set(skip_namespaces)
    operations = {op["request"]["name"]: op for op in meta["operations"]}
    responses = {op["response"]["name"] for op in meta["operations"] if op.get("response")}
    others = {t["name"]: t for t in meta["types"]}
    found: dict[str, Declaration] = {}

    def add(described: dict[str, Any]) -> None:
        name = described["name"]
        if name not in found and described["namespace"] not in skip:
            op = operations.get(name)
            found[name] = Declaration(op["request"], op) if op else Declaration(described, is_response=name in responses)

    def add_with_base(described: dict[str, Any]) -> None:
        base = described.get("inherits")
        if base and base["name"] in others and base["name"] not in found:
            add_with_base(others[base["name"]])
        add(described)

    for described in meta["types"]:
        add_with_base(described)
    for op in meta["operations"]:
        if op.get("response"):
            add(op["response"])
    for op in meta["operations"]:
        add(op["request"])
    return list(found.values())


def by_dependencies(meta: dict[str, Any], skip_namespaces: Iterable[str] = ()) -> list[Declaration]:
    """The types in TypeScript's and Python's order (ServiceStack's OrderTypesByDeps): each after what it names."""
    declarations = _unique(meta, skip_namespaces)
    needs: dict[str, list[str]] = {}
    for d in declarations:
        deps = needs.setdefault(d.name, [])

        def push(name: str, deps: list[str] = deps) -> None:
            name = name.split("[", 1)[0] if name.endswith("[]") else name
            if name not in deps:
                deps.append(name)

        marker = d.return_type
        if marker:
            for name in marker.get("genericArgs") or [marker["name"]]:
                push(name)
        base = d.type.get("inherits")
        if base:
            for name in base.get("genericArgs") or []:
                push(name)
            push(base["name"])
        for prop in d.type.get("properties") or []:
            for name in prop.get("genericArgs") or [prop["type"]]:
                push(name)
    by_name = {d.name: d for d in declarations}
    considered: set[str] = set()
    ordered: list[Declaration] = []

    def dependencies(d: Declaration) -> Iterable[Declaration]:
        for name in needs.get(d.name, []):
            if name not in by_name or name in considered:
                continue
            considered.add(name)
            yield from dependencies(by_name[name])
            yield by_name[name]

    for d in declarations:
        for dep in dependencies(d):
            if dep not in ordered:
                ordered.append(dep)
        if d not in ordered:
            ordered.append(d)
        considered.add(d.name)
    return ordered


def dotnet_order(text: str) -> tuple[str, str]:
    """A sort key comparing names as .NET's default (culture-aware) comparer does for identifiers: letters
    alphabetically whatever their case first, then, at the first difference in case, the lower-case letter first."""
    return text.lower(), text.swapcase()


def by_name(meta: dict[str, Any], skip_namespaces: Iterable[str] = ()) -> list[Declaration]:
    """The types in C#'s order (ServiceStack's CSharpGenerator): by namespace, then name."""
    return sorted(_unique(meta, skip_namespaces), key=lambda d: (dotnet_order(d.type["namespace"]), dotnet_order(d.name)))
