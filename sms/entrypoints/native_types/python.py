"""ServiceStack's python DTOs (/types/python), rendered from the MetadataTypes model (native_types/model.py).

The text is what ServiceStack v8.8's Python generator writes (ServiceStack/src/ServiceStack/NativeTypes/Python/
PythonGenerator.cs, github.com/ServiceStack/ServiceStack at tag v8.8, d1f7ab8f55e9):
the imports, then per type two blank lines, `# @Route(...)` and `# @Api(...)` comments, the
dataclass_json and dataclass decorators, `class Name(Base, IReturn[Response], IGet):`, the description as a
docstring, and one snake_case field per property with a default, so the `servicestack` PyPI client can send any
request (it takes the response type from IReturn[...] and the verb from IGet/IPost/...). The seed's own page shows
this text for SMSSend's types (tests/unit/test_native_types_python.py holds ours to it).

ServiceStack's own types (ResponseStatus ...) are not declared: `from servicestack import *` brings them.
"""
from __future__ import annotations

import keyword
from typing import Any

from .declarations import COLLECTION_TYPES, DICTIONARY_TYPES, Declaration, by_dependencies, declared_kind, is_collection, is_dictionary
from .model import SERVICESTACK
from .names import snake_case
from .options import HEADER_OPTIONS, Language, Options

# .NET type -> Python type (ServiceStack's PythonGenerator.TypeAliases): a Guid is text, a decimal marshmallow's
# Decimal (through `from marshmallow.fields import *`, as ServiceStack writes it).
TYPE_ALIASES = {
    "String": "str", "Boolean": "bool", "DateTime": "datetime.datetime", "DateOnly": "datetime.datetime",
    "DateTimeOffset": "datetime.datetime", "TimeSpan": "datetime.timedelta", "TimeOnly": "datetime.timedelta", "Guid": "str",
    "Char": "str", "Byte": "int", "Int16": "int", "Int32": "int", "Int64": "int", "UInt16": "int", "UInt32": "int",
    "UInt64": "int", "Single": "float", "Double": "float", "Decimal": "Decimal", "IntPtr": "int", "List": "List",
    "Byte[]": "bytes", "Stream": "bytes", "HttpWebResponse": "bytes", "IDictionary": "Dict", "OrderedDictionary": "Dict",
    "Uri": "str", "Type": "str",
}
# The default of a value-type field a request need not give (ServiceStack's DefaultValues).
DEFAULT_VALUES = {
    "Boolean": "False", "DateTime": "datetime.datetime(1, 1, 1)", "DateOnly": "datetime.datetime(1, 1, 1)",
    "DateTimeOffset": "datetime.datetime(1, 1, 1)", "TimeSpan": "datetime.timedelta()", "TimeOnly": "datetime.timedelta()",
    "Byte": "0", "Int16": "0", "Int32": "0", "Int64": "0", "UInt16": "0", "UInt32": "0", "UInt64": "0", "Single": "0.0",
    "Double": "0.0", "Decimal": "decimal.Decimal(0)", "IntPtr": "0",
}
_DICTIONARY_KEYS = ("str", "bool", "int")  # what a Dict key may be; any other key type is written as str
_DEFAULT_IMPORTS = dict(HEADER_OPTIONS[Language.PYTHON])["DefaultImports"]
_DATACLASS_JSON = "@dataclass_json(letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE)"
_INDENT = "    "


def render(meta: dict[str, Any], options: Options) -> str:
    """The file's text after its header (native_types/options.py header() writes that)."""
    lines = [_import(item) for item in options.names("DefaultImports") or _DEFAULT_IMPORTS.split(",")]
    namespace = options.text("GlobalNamespace")
    if namespace:
        lines += ["", f"# module {namespace}"]  # Python has no namespaces: ServiceStack only names it
    for declaration in by_dependencies(meta, skip_namespaces=[SERVICESTACK]):
        lines += ["", ""] + _declare(declaration, meta, options)
    if namespace:
        lines.append("")
    lines.append("")
    return "".join(line + "\n" for line in lines)


def _import(item: str) -> str:
    """`mod:a/b` is `from mod import a, b`, `mod` is `import mod` (ServiceStack's DefaultImports syntax)."""
    module, colon, names = item.partition(":")
    if not colon:
        return f"import {module}"
    return f"from {module} import {names.strip(QUOTES).replace('/', ', ')}"


QUOTES = "\"'"


def _declare(d: Declaration, meta: dict[str, Any], options: Options) -> list[str]:
    lines = [f"# @{name}({', '.join(args)})" for name, args in d.attributes()]
    if options.flag("AddDataContractAttributes", False):
        lines.append("# @DataContract()")
    lines.append(_decorator(options.text("DataClassJson"), "@dataclass_json", _DATACLASS_JSON))
    lines.append(_decorator(options.text("DataClass"), "@dataclass", "@dataclass"))
    extends = ([type_name(d.type["inherits"]["name"], d.type["inherits"].get("genericArgs"))] if d.type.get("inherits") else [])
    extends += [marker] if (marker := _return_marker(d)) else []
    extends += [type_name(i["name"], i.get("genericArgs")) for i in d.type.get("implements") or []]
    lines.append(f"class {d.name}({', '.join(extends)}):" if extends else f"class {d.name}:")
    body = _docstring(d.type.get("description"), options)
    if d.type.get("description"):
        body.append("")  # ServiceStack leaves this line even when descriptions are not written as comments
    version = options.text("AddImplicitVersion") if d.is_request else None
    if version:
        body.append(f"{property_name('Version')}: int = {version}")
    properties, added_status = _own_properties(d, meta)
    body += _properties(properties, added_status, options)
    if not properties and not version:
        body.append("pass")  # as ServiceStack writes it, also after an added ResponseStatus
    return lines + [_INDENT + line if line else "" for line in body]


def _decorator(given: str | None, decorator: str, default: str) -> str:
    """DataClass / DataClassJson: the given arguments in place of ServiceStack's."""
    return f"{decorator}({given})" if given else default


def _return_marker(d: Declaration) -> str | None:
    """IReturn[Response] (quoted when a request returns itself) or IReturnVoid."""
    if d.returns_void:
        return "IReturnVoid"
    returned = d.return_type
    if returned is None:
        return None
    name = type_name(returned["name"], returned.get("genericArgs"))
    return f'IReturn["{name}"]' if name == d.name else f"IReturn[{name}]"


def _docstring(description: str | None, options: Options) -> list[str]:
    if not description or not options.flag("AddDescriptionAsComments", True):
        return []
    return ['"""', _one_line(description), '"""']


def _one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", "")


def _properties(properties: list[dict[str, Any]], added_status: bool, options: Options) -> list[str]:
    lines: list[str] = []
    blank_before = False
    for i, prop in enumerate(properties):
        if blank_before:
            lines.append("")
        blank_before = _data_member(lines, i + 1, options)
        lines.append(_field(prop, options))
        lines += _docstring(prop.get("description"), options)
        if prop.get("description") and i != len(properties) - 1:
            lines.append("")
    if added_status:
        if blank_before:
            lines.append("")
        _data_member(lines, len(properties) + 1, options)
        lines.append(f"{property_name('ResponseStatus')}: ResponseStatus = None")
    return lines


def _own_properties(d: Declaration, meta: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The type's properties, less the ResponseStatus AddResponseStatus added to a response (the model adds it as its
    last property), and whether it was added: ServiceStack writes that one on its own, without Optional[...]."""
    properties = d.type.get("properties") or []
    added = bool(d.is_response and meta["config"].get("addResponseStatus") and properties
                 and properties[-1] == {"name": "ResponseStatus", "type": "ResponseStatus", "namespace": SERVICESTACK})
    return (properties[:-1] if added else properties), added


def _data_member(lines: list[str], order: int, options: Options) -> bool:
    if not options.flag("AddDataContractAttributes", False):
        return False
    lines.append(f"# @DataMember(Order={order})" if options.flag("AddIndexesToDataMembers", False) else "# @DataMember()")
    return True


def _field(prop: dict[str, Any], options: Options) -> str:
    """One field: `name: Type = default`, a keyword-named one under its own name with `_` (`from_`) and its JSON
    name in dataclasses_json's config, as the seed's `from_` is."""
    annotation = property_type(prop)
    factory = None
    default = "None"
    if (prop.get("isRequired") or options.flag("InitializeCollections", False)) and is_collection(prop):
        factory = "dict" if is_dictionary(prop) else "list"
    elif options.flag("MakePropertiesOptional", False):
        annotation = _optional(annotation)
    elif prop["type"] in DEFAULT_VALUES:
        default = DEFAULT_VALUES[prop["type"]]
    else:
        annotation = _optional(annotation)
    name = property_name(prop["name"])
    if not name.endswith("_"):
        value = f"field(default_factory={factory})" if factory else default
        return f"{name}: {annotation} = {value}"
    # ServiceStack writes `default=field(default_factory=list)` here, which dataclasses reject: the factory goes in
    # the one field(...) instead.
    value = f"default_factory={factory}" if factory else f"default={default}"
    return f"{name}: {annotation} = field(metadata=config(field_name='{name.rstrip('_')}'), {value})"


def _optional(annotation: str) -> str:
    return annotation if annotation.startswith("Optional[") else f"Optional[{annotation}]"


def property_type(prop: dict[str, Any]) -> str:
    """A property's Python type."""
    return type_name(declared_kind(prop), prop.get("genericArgs"))


def type_name(kind: str, generic_args: list[str] | None = None) -> str:
    """A .NET type (as MetadataTypes names it: String, Nullable`1 of Int32, List`1 of SMSContact ...) in Python."""
    if generic_args:
        args = [_alias(a) for a in generic_args]
        if kind == "Nullable`1":
            return f"Optional[{args[0]}]"
        if kind in DICTIONARY_TYPES:
            return f"Dict[{args[0] if args[0] in _DICTIONARY_KEYS else 'str'}, {args[1]}]"
        if kind in COLLECTION_TYPES:
            return f"List[{args[0]}]"
        if "`" in kind:
            return f"{_alias(kind)}[{', '.join(args)}]"
    return _alias(kind)


def _alias(kind: str) -> str:
    kind = kind.rstrip("?")
    if kind in TYPE_ALIASES:
        return TYPE_ALIASES[kind]
    if "[" in kind:  # an array
        return f"List[{_alias(kind.split('[', 1)[0])}]"
    return kind.split("`")[0].rsplit(".", 1)[-1]


def property_name(name: str) -> str:
    """ServiceStack's snake_case of a .NET name (SMSModel is sms_model), with `_` added to a Python keyword or a
    type's name (from_, str_)."""
    snake = snake_case(name)
    return snake + "_" if keyword.iskeyword(snake) or snake in _ALIAS_VALUES else snake


_ALIAS_VALUES = frozenset(TYPE_ALIASES.values())
