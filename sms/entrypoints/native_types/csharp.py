"""ServiceStack's csharp DTOs (/types/csharp), rendered from the MetadataTypes model (native_types/model.py).

The text is what ServiceStack v8.8's C# generator writes (ServiceStack/src/ServiceStack/NativeTypes/CSharp/
CSharpGenerator.cs, github.com/ServiceStack/ServiceStack at tag v8.8, d1f7ab8f55e9):
the usings, then `namespace SMSGateway.ServiceModel { ... }` with the types by name, each with its
description as `///<summary>`, one `[Route("...", "VERB")]` per route, its `[Api(...)]`, then
`public partial class Name` and `    : Base, IReturn<Response>, IGet`, and `public virtual Type Name { get; set; }` per
property. ServiceStack's C# JsonServiceClient picks the URL from those [Route] attributes (the one with the most
variables, then the shortest), so every route an operation answers on is listed.

The options MakePartial, MakeVirtual, MakeInternal, AddNullableAnnotations, InitializeCollections, GlobalNamespace,
ExcludeNamespace, AddNamespaces, DefaultNamespaces, AddDescriptionAsComments, AddDataContractAttributes,
AddIndexesToDataMembers, AddGeneratedCodeAttributes, MakeDataContractsExtensible and AddImplicitVersion change the
text as they do in ServiceStack; the others are accepted (and shown in the header) with nothing to change here.
ServiceStack's own types (ResponseStatus ...) are not declared: `using ServiceStack;` brings them.
"""
from __future__ import annotations

from typing import Any

from .declarations import Declaration, by_name, declared_kind, is_collection, is_dictionary, literal
from .model import SERVICESTACK
from .options import HEADER_OPTIONS, VERSION, Language, Options

# .NET type -> C# keyword (ServiceStack's CSharpGenerator.TypeAliases); any other type keeps its name (Guid, DateTime).
TYPE_ALIASES = {
    "String": "string", "Boolean": "bool", "Byte": "byte", "Int16": "short", "Int32": "int", "Int64": "long",
    "UInt16": "ushort", "UInt32": "uint", "UInt64": "ulong", "Single": "float", "Double": "double", "Decimal": "decimal",
}
# The usings every file starts with (ServiceStack's NativeTypesFeature DefaultNamespaces).
DEFAULT_NAMESPACES = ("System", "System.IO", "System.Collections", "System.Collections.Generic", "System.Runtime.Serialization",
                      "ServiceStack", "ServiceStack.DataAnnotations")
_DEFAULT_XML_NAMESPACE = dict(HEADER_OPTIONS[Language.CSHARP])["AddDefaultXmlNamespace"]
_INDENT = "    "


def render(meta: dict[str, Any], options: Options) -> str:
    """The file's text after its header (native_types/options.py header() writes that)."""
    namespaces = _namespaces(meta, options)
    lines = [f"using {ns};" for ns in namespaces]
    if options.flag("AddGeneratedCodeAttributes", False):
        lines.append("using System.CodeDom.Compiler;")
    xml_namespace = options.text("AddDefaultXmlNamespace") or _DEFAULT_XML_NAMESPACE
    if options.flag("AddDataContractAttributes", False):
        defaults = _default_namespaces(options)
        lines.append("")
        lines += [f'[assembly: ContractNamespace("{xml_namespace}", ClrNamespace="{ns}")]' for ns in namespaces if ns not in defaults]
    lines.append("")
    exclude_namespace = options.flag("ExcludeNamespace", False)
    indent = "" if exclude_namespace else _INDENT
    current = None
    for declaration in by_name(meta, skip_namespaces=[SERVICESTACK]):
        if not exclude_namespace:
            namespace = options.text("GlobalNamespace") or declaration.type["namespace"]
            if namespace != current:
                lines += ["}", ""] if current else []
                lines += [f"namespace {namespace}", "{"]
                current = namespace
        lines += [indent + line if line else "" for line in _declare(declaration, meta, options)]
        lines.append("")
    if current:
        lines.append("}")
    lines.append("")
    return "".join(line + "\n" for line in lines)


def _default_namespaces(options: Options) -> tuple[str, ...]:
    return options.names("DefaultNamespaces") or DEFAULT_NAMESPACES


def _namespaces(meta: dict[str, Any], options: Options) -> list[str]:
    """The usings: the default namespaces, AddNamespaces, the .NET and ServiceStack namespaces the types use, then
    the DTOs' own namespace (or GlobalNamespace; none with ExcludeNamespace), each once."""
    found = list(_default_namespaces(options)) + list(options.names("AddNamespaces"))
    found += [ns for ns in meta["namespaces"] if ns.startswith("System") or ns == SERVICESTACK]
    if not options.flag("ExcludeNamespace", False):
        if options.text("GlobalNamespace"):
            found.append(options.text("GlobalNamespace"))
        else:
            found += [t["namespace"] for t in meta["types"]]
            found += [t["namespace"] for op in meta["operations"] for t in (op["request"], op.get("response")) if t]
    return list(dict.fromkeys(ns for ns in found if ns))


def _declare(d: Declaration, meta: dict[str, Any], options: Options) -> list[str]:
    lines = _description(d.type.get("description"), options)
    lines += [f"[{name}({', '.join(args)})]" if args else f"[{name}]" for name, args in d.attributes()]
    if options.flag("AddDataContractAttributes", False):
        lines.append("[DataContract]")
    if options.flag("AddGeneratedCodeAttributes", False):
        lines.append(f'[GeneratedCode("AddServiceStackReference", "{VERSION}")]')
    accessor = "internal" if options.flag("MakeInternal", False) else "public"
    partial = "partial " if options.flag("MakePartial", True) else ""
    lines.append(f"{accessor} {partial}class {type_name(d.name, d.type.get('genericArgs'))}")
    extensible = options.flag("MakeDataContractsExtensible", False) and not d.type.get("inherits")
    inherits = [type_name(d.type["inherits"]["name"], d.type["inherits"].get("genericArgs"))] if d.type.get("inherits") else []
    inherits += [marker] if (marker := _return_marker(d)) else []
    inherits += [type_name(i["name"], i.get("genericArgs")) for i in d.type.get("implements") or []]
    inherits += ["IExtensibleDataObject"] if extensible else []
    if inherits:
        lines.append(f"    : {', '.join(inherits)}")
    lines.append("{")
    body = _constructor(d, options) + _properties(d, meta, options, extensible)
    lines += [_INDENT + line if line else "" for line in body]
    lines.append("}")
    return lines


def _description(description: str | None, options: Options) -> list[str]:
    """A description as an XML doc comment, or as a [Description] attribute when AddDescriptionAsComments=False."""
    if not description:
        return []
    one_line = description.replace("\r", "").replace("\n", "")
    if options.flag("AddDescriptionAsComments", True):
        return ["///<summary>", f"///{one_line}", "///</summary>"]
    return [f"[Description({literal(one_line)})]"]


def _return_marker(d: Declaration) -> str | None:
    if d.returns_void:
        return "IReturnVoid"
    returned = d.return_type
    return f"IReturn<{type_name(returned['name'], returned.get('genericArgs'))}>" if returned else None


def _virtual(options: Options) -> str:
    return "virtual " if options.flag("MakeVirtual", True) else ""


def _constructor(d: Declaration, options: Options) -> list[str]:
    """AddImplicitVersion: a request's Version property, set by its constructor."""
    version = options.text("AddImplicitVersion")
    if not version or not d.is_request:
        return []
    return [f"public {_virtual(options)}int Version {{ get; set; }}", "",
            f"public {d.name}()", "{", f"{_INDENT}Version = {version};", "}", ""]


def _properties(d: Declaration, meta: dict[str, Any], options: Options, extensible: bool) -> list[str]:
    properties = d.type.get("properties") or []
    # The ResponseStatus AddResponseStatus added (the model adds it as a response's last property): ServiceStack
    # writes it after the others, without a nullable annotation.
    added_status = bool(d.is_response and meta["config"].get("addResponseStatus") and properties
                        and properties[-1] == {"name": "ResponseStatus", "type": "ResponseStatus", "namespace": SERVICESTACK})
    if added_status:
        properties = properties[:-1]
    virtual = _virtual(options)
    lines: list[str] = []
    blank_before = False
    for order, prop in enumerate(properties, start=1):
        if blank_before:
            lines.append("")
        kind = property_type(prop)
        if options.flag("AddNullableAnnotations", False) and not prop.get("isRequired") and not prop.get("isValueType"):
            kind = kind if kind.endswith("?") else kind + "?"
        comment = _description(prop.get("description"), options)
        lines += comment
        blank_before = bool(comment) and not options.flag("AddDescriptionAsComments", True)
        blank_before = _data_member(lines, order, options) or blank_before
        initializer = ""
        if (prop.get("isRequired") or options.flag("InitializeCollections", False)) and is_collection(prop):
            initializer = " = new();" if is_dictionary(prop) else " = [];"
        lines.append(f"public {virtual}{kind} {prop['name']} {{ get; set; }}{initializer}")
    if added_status:
        if blank_before:
            lines.append("")
        blank_before = True
        _data_member(lines, len(properties) + 1, options)
        lines.append(f"public {virtual}ResponseStatus ResponseStatus {{ get; set; }}")
    if extensible and all(p["name"] != "ExtensionData" for p in properties):
        if blank_before:
            lines.append("")
        lines.append(f"public {virtual}ExtensionDataObject ExtensionData {{ get; set; }}")
    return lines


def _data_member(lines: list[str], order: int, options: Options) -> bool:
    if not options.flag("AddDataContractAttributes", False):
        return False
    lines.append(f"[DataMember(Order={order})]" if options.flag("AddIndexesToDataMembers", False) else "[DataMember]")
    return True


def property_type(prop: dict[str, Any]) -> str:
    """A property's C# type."""
    return type_name(declared_kind(prop), prop.get("genericArgs"))


def type_name(kind: str, generic_args: list[str] | None = None) -> str:
    """A .NET type as MetadataTypes names it (Nullable`1 of Int32, List`1 of SMSContact, Dictionary`2 ...) in C#:
    int?, List<SMSContact>, Dictionary<string, int>."""
    if generic_args:
        if kind.startswith("Nullable`1"):
            return f"{_alias(generic_args[0])}?" + ("[]" if "[" in kind else "")
        if "`" in kind:
            return f"{_alias(kind)}<{', '.join(_alias(a) for a in generic_args)}>"
    return _alias(kind)


def _alias(kind: str) -> str:
    if "[" in kind:  # an array
        return _alias(kind.split("[", 1)[0]) + "[]"
    return TYPE_ALIASES.get(kind) or kind.split("`")[0].rsplit(".", 1)[-1]
