"""What a /types/{language} request asks for: ServiceStack's options in the query string, and the header comment
that lists them at the top of every file, so that its tools can update the file in place.

ServiceStack's tools (npm's `typescript-ref`, the `x` dotnet tool, `npx get-dtos`) read the header back: the
lines after `BaseUrl:` up to the closing line, `//` (`#` in Python) marking an option left at its default, and
send every uncommented one again as a query parameter (servicestack-cli src/index.ts updateReference; dotnet-app
src/Web/Startup.cs UpdateReference). So an option the request gave is written uncommented, with its value, and
one it did not give is commented out with the default (ServiceStack NativeTypes/*Generator.cs GetCode, v8.8).
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from ...domain.errors import FieldError, ValidationFailed

# ServiceStack's version whose output the gateway writes: v8.8, the newest the seed's page fits (its Python has no
# `Object = TypeVar('Object')`, which v8.9 added).
VERSION = "8.80"


class Language(enum.Enum):
    TYPESCRIPT = "typescript"
    PYTHON = "python"
    CSHARP = "csharp"

    @property
    def comment(self) -> str:
        """What marks an option line as commented out (and left at its default)."""
        return "#" if self is Language.PYTHON else "//"


_PYTHON_IMPORTS = ("datetime,decimal,marshmallow.fields:*,servicestack:*,typing:*,dataclasses:dataclass/field,"
                   "dataclasses_json:dataclass_json/LetterCase/Undefined/config,enum:Enum/IntEnum")

# Each language's header options and their defaults, in ServiceStack's order (NativeTypes/*Generator.cs, v8.8).
HEADER_OPTIONS: dict[Language, tuple[tuple[str, str], ...]] = {
    Language.TYPESCRIPT: (
        ("GlobalNamespace", ""), ("MakePropertiesOptional", "False"), ("AddServiceStackTypes", "True"),
        ("AddResponseStatus", "False"), ("AddImplicitVersion", ""), ("AddDescriptionAsComments", "True"),
        ("IncludeTypes", ""), ("ExcludeTypes", ""), ("DefaultImports", ""),
    ),
    Language.PYTHON: (
        ("GlobalNamespace", ""), ("AddServiceStackTypes", "True"), ("AddResponseStatus", "False"), ("AddImplicitVersion", ""),
        ("AddDescriptionAsComments", "True"), ("IncludeTypes", ""), ("ExcludeTypes", ""), ("DefaultImports", _PYTHON_IMPORTS),
        ("DataClass", ""), ("DataClassJson", ""),
    ),
    Language.CSHARP: (
        ("GlobalNamespace", ""), ("MakePartial", "True"), ("MakeVirtual", "True"), ("MakeInternal", "False"),
        ("MakeDataContractsExtensible", "False"), ("AddNullableAnnotations", "False"), ("AddReturnMarker", "True"),
        ("AddDescriptionAsComments", "True"), ("AddDataContractAttributes", "False"), ("AddIndexesToDataMembers", "False"),
        ("AddGeneratedCodeAttributes", "False"), ("AddResponseStatus", "False"), ("AddImplicitVersion", ""),
        ("InitializeCollections", "False"), ("ExportValueTypes", "False"), ("IncludeTypes", ""), ("ExcludeTypes", ""),
        ("AddNamespaces", ""), ("AddDefaultXmlNamespace", "http://schemas.servicestack.net/types"),
    ),
}
# Every option any language takes, by its name in lower case: ServiceStack binds query keys in any case. A key that
# is none of these is ignored, as ServiceStack ignores what its request DTO has no property for.
_KNOWN = {name.lower(): name for options in HEADER_OPTIONS.values() for name, _ in options} | {
    name.lower(): name for name in ("BaseUrl", "WithoutOptions", "ExportAsTypes", "ExcludeNamespace", "AddModelExtensions",
                                    "AddPropertyAccessors", "SettersReturnThis", "ExportTags", "TreatTypesAsStrings",
                                    "DefaultNamespaces", "Package", "AddDocAnnotations", "ExcludeGenericBaseTypes")}
_TRUE, _FALSE = ("true", "1"), ("false", "0")
_FLAGS = {name for options in HEADER_OPTIONS.values() for name, default in options if default in ("True", "False")} | {
    "ExportAsTypes", "ExcludeNamespace", "AddModelExtensions", "AddPropertyAccessors", "SettersReturnThis", "AddDocAnnotations",
    "ExcludeGenericBaseTypes"}
# What each kind of option may hold. A value is written into the header and into code (a namespace, an import, a
# decorator's arguments), so one that could end the header's comment or the line, or add code, is refused with a 400
# naming it, as ServiceStack's own binding refuses an int option that is no number.
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_SHAPES = {
    "AddImplicitVersion": (r"\d{1,9}", "a whole number"),
    "GlobalNamespace": (_NAME, "a namespace: letters, digits, _ and ."), "Package": (_NAME, "a package: letters, digits, _ and ."),
    "AddNamespaces": (rf"{_NAME}(,{_NAME})*", "namespaces (letters, digits, _ and .), comma-separated"),
    "DefaultNamespaces": (rf"{_NAME}(,{_NAME})*", "namespaces (letters, digits, _ and .), comma-separated"),
    "DefaultImports": (r"[A-Za-z0-9_.:/*@\-]+(,[A-Za-z0-9_.:/*@\-]+)*", "imports (module:name/name, ...), comma-separated"),
    "DataClass": (r"[A-Za-z0-9_=., ]*", "keyword arguments (frozen=True, order=True)"),
    "DataClassJson": (r"[A-Za-z0-9_=., ]*", "keyword arguments (letter_case=LetterCase.CAMEL)"),
    "BaseUrl": (r"https?://[^\s\"'<>\\`]+", "an http or https URL"),
    # C# writes it inside a string literal ([assembly: ContractNamespace("...")]): a URI, with no quote or backslash.
    "AddDefaultXmlNamespace": (r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\"'<>\\`]+", "a URI (http://..., urn:...)"),
    **dict.fromkeys(("IncludeTypes", "ExcludeTypes", "ExportTags", "TreatTypesAsStrings"),
                    (r"[A-Za-z0-9_.*{}/`, \[\]]+", "type names, Name.* or {tag}, comma-separated")),
}


@dataclass(frozen=True)
class Options:
    """The options a request gave (non-empty values only, under ServiceStack's spelling of each name)."""

    given: Mapping[str, str]

    def text(self, name: str) -> str | None:
        return self.given.get(name)

    def flag(self, name: str, default: bool) -> bool:
        """A boolean option: True/False in any case, or 1/0 (parse refused anything else); the default when not given."""
        value = (self.given.get(name) or "").strip().lower()
        return True if value in _TRUE else False if value in _FALSE else default

    def names(self, name: str) -> tuple[str, ...]:
        """A list option: comma-separated, or in JSV's brackets ([A,B]); each item trimmed, empty ones dropped."""
        value = (self.given.get(name) or "").strip()
        if value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        return tuple(item.strip() for item in value.split(",") if item.strip())

    def shown(self, name: str, default: str) -> str:
        """The option's value as the header writes it: a flag as .NET prints a bool, anything else as given."""
        if default in ("True", "False"):
            return str(self.flag(name, default == "True"))
        return self.given[name]


def parse(query: Mapping[str, str]) -> Options:
    """The options in a query string (keys in any case; values already URL-decoded, `+` as a space and `%2a` as `*`
    included, as the `x` tool encodes them); ValidationFailed naming each option whose value it cannot take."""
    given: dict[str, str] = {}
    errors: list[FieldError] = []
    for key, value in query.items():
        name = _KNOWN.get(key.strip().lower())
        if name is None or value.strip() == "":
            continue
        value = value.strip()
        problem = _problem(name, value)
        if problem:
            shown = value if len(value) <= 100 else value[:100] + "..."
            errors.append(FieldError(name, "InvalidValue", f"{name}: {shown!r} {problem}"))
        else:
            given[name] = value
    if errors:
        raise ValidationFailed(errors)
    return Options(given)


def _problem(name: str, value: str) -> str | None:
    """What is wrong with an option's value, if anything."""
    if len(value) > 2000:
        return "is longer than 2000 characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or "*/" in value or '"""' in value:
        return "holds a control character, */ or \"\"\", which would end the file's header"
    if name in _FLAGS and value.lower() not in _TRUE + _FALSE:
        return "must be True or False"
    shape = _SHAPES.get(name)
    if shape and re.fullmatch(shape[0], value) is None:
        return f"must be {shape[1]}"
    return None


def header(language: Language, options: Options, base_url: str, now: datetime | None = None) -> str:
    """The comment block a file starts with, ending in one blank line; empty with WithoutOptions."""
    if "WithoutOptions" in options.given:
        return ""
    now = now or datetime.now(timezone.utc)
    comment = language.comment
    open_, close = ('""" Options:', '"""') if language is Language.PYTHON else ("/* Options:", "*/")
    lines = [open_, f"Date: {now:%Y-%m-%d %H:%M:%S}", f"Version: {VERSION}",
             f'Tip: To override a DTO option, remove "{comment}" prefix before updating', f"BaseUrl: {base_url}", ""]
    for name, default in HEADER_OPTIONS[language]:
        if name in options.given:
            lines.append(f"{name}: {options.shown(name, default)}")
        else:
            lines.append(f"{comment}{name}: {default}")
    return "\n".join([*lines, close, "", ""])
