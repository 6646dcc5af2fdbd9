"""ServiceStack's TypeScript DTOs (/types/typescript), rendered from the MetadataTypes model (native_types/model.py).

The shape is ServiceStack v8.8's TypeScript generator's (NativeTypes/TypeScript/TypeScriptGenerator.cs at tag v8.8):
the built-in interfaces first (IReturn<T>, IReturnVoid and the verb markers the requests implement), then every type
after the types it needs, each as `export class` with a `public constructor(init?: Partial<X>)` that assigns what it is
given; request classes carry their routes as `// @Route(...)` comments and `implements IReturn<Response>, IGet`, with the
getTypeName(), getMethod() and createResponse() that @servicestack/client's JsonServiceClient calls. Property names are
ServiceStack's camelCase of the .NET name (what the gateway's JSON writes; tests/unit/test_native_types_typescript.py
holds the two together).

One departure, so that the file compiles under `tsc --strict`: v8.8 writes a plain `public name: string;` for every
property that is not a Nullable<T>, and strict mode rejects a property no constructor assigns (TS2564: the Object.assign
in the constructor does not count). ServiceStack's answer since v10 is to mark every property `?` unless the model says
it is required, plus `// @ts-nocheck` at the top; the gateway takes the first half and not the second: a property is
`?` unless its model requires it (isRequired), and a required one is declared `name!: type` (TypeScript's "assigned
elsewhere": the server always sends it), or, for a collection, given v8.8's own ` = []` / ` = {}`. Everything else
is v8.8's text. For SMSSend and the seed's types nothing is required, so every property there carries `?`.

Options: MakePropertiesOptional (every property `?`), GlobalNamespace (everything inside `export module X { }`),
DefaultImports (`name:module` -> `import { name } from "module";`, bare `x` -> `import x;`), AddServiceStackTypes
(the built-in interfaces), AddDescriptionAsComments (`/** @description ... */`) are honoured here; IncludeTypes,
ExcludeTypes and AddResponseStatus are applied by the model; the rest (AddImplicitVersion ...) are accepted and ignored.
"""
from __future__ import annotations

import re
from typing import Any

from ...domain.errors import FieldError, ValidationFailed
from .declarations import COLLECTION_TYPES, DICTIONARY_TYPES, Declaration, by_dependencies
from .model import SERVICESTACK
from .names import camel_case
from .options import Options

# .NET type -> TypeScript (v8.8's TypeAliases, the ones the gateway's DTOs use); any other name is a DTO's own.
_ALIASES = {
    "String": "string", "Guid": "string", "DateTime": "string", "TimeSpan": "string", "Char": "string",
    "Boolean": "boolean",
    "Byte": "number", "Int16": "number", "Int32": "number", "Int64": "number", "UInt16": "number", "UInt32": "number",
    "UInt64": "number", "Single": "number", "Double": "number", "Decimal": "number",
}
_DICTIONARY_KEYS = ("string", "number", "boolean")  # what an index signature may be keyed by; anything else is a string
# The order ServiceStack lists its verb markers in (NativeTypesService.BuiltinInterfaces); emitted in order of first use.
_VERB_MARKERS = ("IGet", "IPost", "IPut", "IDelete", "IPatch")
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*")
_IMPORT = re.compile(r"[\w$@/.*\- ]+")
_INDENT = "    "


def _alias(name: str) -> str:
    return _ALIASES.get(name, name.split("`")[0])


def _type(name: str, generic_args: list[str] | None) -> str:
    """A .NET type (with its generic arguments) as TypeScript writes it; Nullable<T> is T (the `?` goes on the name)."""
    if generic_args:
        if name == "Nullable`1":
            return _alias(generic_args[0])
        if name in COLLECTION_TYPES:
            return f"{_alias(generic_args[0])}[]"
        if name in DICTIONARY_TYPES:
            key = _alias(generic_args[0])
            return "{ [index:" + (key if key in _DICTIONARY_KEYS else "string") + "]: " + _alias(generic_args[1]) + "; }"
        return f"{_alias(name)}<{', '.join(_alias(a) for a in generic_args)}>"
    return _alias(name)


def _comment(text: str) -> str:
    """A description as a one-line doc comment (v8.8 drops line breaks; a `*/` inside would end the comment early)."""
    return "/** @description " + text.replace("\r", "").replace("\n", "").replace("*/", "*\\/") + " */"


def _interface(name: str, generic_args: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": SERVICESTACK, "implements": [], "isInterface": True,
            **({"genericArgs": generic_args} if generic_args else {})}


def _expanded_requests(meta: dict[str, Any], options: Options) -> list[dict[str, Any]]:
    """The requests IncludeTypes names with `.*` or by tag: the only ones whose built-in interfaces an IncludeTypes
    file declares (ServiceStack NativeTypesMetadata.GetIncludeList)."""
    items = options.names("IncludeTypes")
    names = {item[:-2] for item in items if item.endswith(".*")}
    tags = {tag.strip() for item in items if item.startswith("{") and item.endswith("}") for tag in item[1:-1].split(",")}
    return [op["request"] for op in meta["operations"] if op["request"]["name"] in names or tags & set(op.get("tags", []))]


def _builtin_interfaces(meta: dict[str, Any], options: Options) -> list[dict[str, Any]]:
    """ServiceStack's own interfaces the file declares (with AddServiceStackTypes): IReturn<T> and IReturnVoid, then
    each verb marker a request implements, in order of first use. An IncludeTypes file declares only those its
    `.*`/tagged requests use; ExcludeTypes can drop any of them."""
    if not options.flag("AddServiceStackTypes", True):
        return []
    operations = meta["operations"]
    if options.names("IncludeTypes"):
        expanded = [op for op in operations if op["request"] in _expanded_requests(meta, options)]
        wanted = (["IReturn`1"] if any("returnType" in op for op in expanded) else [])
        wanted += ["IReturnVoid"] if any(op.get("returnsVoid") for op in expanded) else []
        markers = {i["name"] for op in expanded for i in op["request"].get("implements", [])}
    else:
        wanted = ["IReturn`1", "IReturnVoid"]
        markers = set(_VERB_MARKERS)
    for t in [*meta["types"], *(op["response"] for op in operations if "response" in op), *(op["request"] for op in operations)]:
        wanted += [i["name"] for i in t.get("implements", []) if i["name"] in markers & set(_VERB_MARKERS) and i["name"] not in wanted]
    excluded = set(options.names("ExcludeTypes"))
    return [_interface("IReturn", ["T"]) if name == "IReturn`1" else _interface(name)
            for name in wanted if name not in excluded and name.split("`")[0] not in excluded]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.indent = ""

    def line(self, text: str = "") -> None:
        self.lines.append(self.indent + text if text else "")


def _property(w: _Writer, prop: dict[str, Any], options: Options) -> None:
    ts_type = _type(prop["type"], prop.get("genericArgs"))
    name = camel_case(prop["name"])
    if options.flag("AddDescriptionAsComments", True) and prop.get("description"):
        w.line(_comment(prop["description"]))
    if options.flag("MakePropertiesOptional", False) or not prop.get("isRequired"):
        w.line(f"public {name}?: {ts_type};")
    elif prop["type"] in COLLECTION_TYPES:
        w.line(f"public {name}: {ts_type} = [];")
    elif prop["type"] in DICTIONARY_TYPES:
        w.line(f"public {name}: {ts_type} = {{}};")
    else:
        w.line(f"public {name}!: {ts_type};")


def _declare(w: _Writer, d: Declaration, options: Options) -> None:
    t, op = d.type, d.operation
    w.line()
    if options.flag("AddDescriptionAsComments", True) and t.get("description"):
        w.line(_comment(t["description"]))
    for name, args in d.attributes():  # its routes, then its attributes, as comments
        w.line(f"// @{name}({', '.join(args)})")
    name = _type(t["name"], t.get("genericArgs"))
    if t.get("isInterface"):
        w.line(f"export interface {name}")
        w.line("{")
        if t["name"] == "IReturn":
            w.line(_INDENT + "createResponse(): T;")
        elif t["name"] == "IReturnVoid":
            w.line(_INDENT + "createResponse(): void;")
        w.line("}")
        return
    interfaces = []
    if op is not None and "returnType" in op:
        interfaces.append(f"IReturn<{_type(op['returnType']['name'], op['returnType'].get('genericArgs'))}>")
    elif op is not None and op.get("returnsVoid"):
        interfaces.append("IReturnVoid")
    interfaces += [_type(i["name"], i.get("genericArgs")) for i in t.get("implements", [])]
    extends = f" extends {_type(t['inherits']['name'], t['inherits'].get('genericArgs'))}" if "inherits" in t else ""
    implements = f" implements {', '.join(interfaces)}" if interfaces else ""
    w.line(f"export class {name}{extends}{implements}")
    w.line("{")
    w.indent += _INDENT
    for prop in t.get("properties", []):
        _property(w, prop, options)
    w.line()
    super_call = "super(init); " if extends else ""
    w.line(f"public constructor(init?: Partial<{name}>) {{ {super_call}(Object as any).assign(this, init); }}")
    if op is not None:
        w.line(f"public getTypeName() {{ return '{t['name']}'; }}")
        w.line(f"public getMethod() {{ return '{op['method']}'; }}")
        if "returnType" in op:
            w.line(f"public createResponse() {{ {_create_response(op['returnType'])} }}")
        else:
            w.line("public createResponse() {}")
    w.indent = w.indent[:-len(_INDENT)]
    w.line("}")


def _create_response(return_type: dict[str, Any]) -> str:
    ts_type = _type(return_type["name"], return_type.get("genericArgs"))
    defaults = {"string": "''", "number": "0", "boolean": "false"}
    if ts_type in defaults:
        return f"return {defaults[ts_type]};"
    if ts_type.endswith("[]"):
        return f"return new Array<{ts_type[:-2]}>();"
    return f"return new {ts_type}();"


def _imports(options: Options) -> list[str]:
    lines = []
    for item in options.names("DefaultImports"):
        if not _IMPORT.fullmatch(item.replace(":", " ", 1).replace('"', "").replace("'", "")):
            raise ValidationFailed([FieldError("DefaultImports", "InvalidValue",
                                               f"DefaultImports: '{item}' is not a name, or name:module")])
        name, colon, module = item.partition(":")
        lines.append(f'import {{ {name} }} from "{module.strip().strip(chr(34) + chr(39))}";' if colon else f"import {item};")
    return lines


def render(meta: dict[str, Any], options: Options) -> str:
    """The file's text after its header (native_types/options.py header() writes that)."""
    w = _Writer()
    for line in _imports(options):
        w.line(line)
    namespace = options.text("GlobalNamespace")
    if namespace is not None:
        if not _IDENTIFIER.fullmatch(namespace):
            raise ValidationFailed([FieldError("GlobalNamespace", "InvalidValue", f"GlobalNamespace: '{namespace}' is not a "
                                               "TypeScript name (letters, digits, _ and $, dotted)")])
        w.line()
        w.line(f"export module {namespace}")
        w.line("{")
        w.indent = _INDENT
    with_interfaces = {**meta, "types": [*_builtin_interfaces(meta, options), *meta["types"]]}
    for d in by_dependencies(with_interfaces):
        _declare(w, d, options)
    if namespace is not None:
        w.indent = ""
        w.line()
        w.line("}")
    w.line()
    return "\n".join(w.lines) + "\n"
