"""HTTP routing as the Azure Functions host does it, so what routes here routes the same on Azure.

The host does not apply ASP.NET Core's route precedence (literal before parameter). It sorts the
functions by name, case-insensitively (`FunctionMetadataManager.LoadFunctionMetadata`:
`OrderBy(f => f.Name, StringComparer.OrdinalIgnoreCase)`), adds each HTTP function's route to one
route collection in that order with its `methods` as an `HttpMethodRouteConstraint`
(`WebScriptHostHttpRoutesManager.InitializeHttpFunctionRoutes`, azure-webjobs-sdk-extensions
`WebJobsRouteBuilder.MapFunctionRoute`), and the first route whose template and constraints match
serves the request (ASP.NET `RouteCollection.RouteAsync`). A template that matches with a method no
function admits is skipped like any other non-match: the answer is 404, not 405. See
azure-functions-host issues #3153, #9876, #10098 and azure-webjobs-sdk-extensions PR #842.

Template matching follows ASP.NET Core's `RoutePatternMatcher` (literals compared
OrdinalIgnoreCase, one trailing slash ignored, an empty segment never matches, complex segments
such as `send.{format}` matched right to left) and `RoutePatternParser` (`{{` and `}}` inside a
parameter stand for `{` and `}`). The path is matched as Kestrel hands it over: percent-decoded
except `%2F`, dot segments removed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable
from urllib.parse import unquote

# ScriptHost.ValidateHttpFunction: a route starting with these conflicts with the host's own routes.
RESERVED_PREFIXES = ("admin", "runtime")


# -- constraints ------------------------------------------------------------------------------------

_GUID_FORMS = re.compile(  # Guid.TryParse's N, D, B and P forms, surrounding white space allowed
    r"\A\s*(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}"
    r"|\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\))\s*\Z", re.IGNORECASE)


def _int_constraint(value: str) -> bool:
    text = value.strip()
    return bool(re.fullmatch(r"[+-]?[0-9]+", text)) and -(2**31) <= int(text) < 2**31


def constraint(text: str) -> Callable[[str], bool]:
    """A route constraint (`regex(...)`, `guid`, `alpha`, `int`) as a test of a route value.

    Regex constraints are `RegexRouteConstraint`s: CultureInvariant | IgnoreCase, and `IsMatch`, a
    search anywhere in the value, so a pattern that means the whole value must anchor itself."""
    name, paren, argument = text.partition("(")
    name = name.strip().lower()
    if name == "regex" and paren and argument.endswith(")"):
        pattern = re.compile(argument[:-1], re.IGNORECASE)
        return lambda value: pattern.search(value) is not None
    if name == "guid":
        return lambda value: _GUID_FORMS.match(value) is not None
    if name == "alpha":
        return lambda value: re.fullmatch(r"[a-z]*", value, re.IGNORECASE) is not None
    if name == "int":
        return _int_constraint
    raise ValueError(f"route constraint '{text}' is not one the dev host imitates (regex, guid, alpha, int)")


# -- templates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    name: str
    optional: bool = False
    catch_all: bool = False
    constraints: tuple[Callable[[str], bool], ...] = field(default=(), compare=False)


Part = "str | Parameter"  # a literal's text, or a parameter


def _parameter(text: str) -> Parameter:
    """The inside of `{...}`, braces already unescaped, read as RouteParameterParser reads it:
    `*name` or `**name` (catch-all), a trailing `?` (optional), `:constraint` or `:constraint(argument)`
    any number of times, then `=default`. Inside a constraint's parentheses a ')' ends it only when
    it is last or followed by ':' or '=', so a regex may hold parentheses of its own."""
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    optional = text.endswith("?")
    text = text[:-1] if optional else text
    split = next((i for i, ch in enumerate(text) if ch in ":=" and i > 0), len(text))
    name, rest = text[:split], text[split:]
    if not name or any(ch in name for ch in "/{}?*"):
        raise ValueError(f"'{name}' is not a route parameter name")
    constraints: list[str] = []
    default = None
    i = 0
    while i < len(rest):
        if rest[i] == "=":
            default = rest[i + 1:]
            break
        start = i + 1  # rest[i] is ':'
        i = start
        while i < len(rest) and rest[i] not in ":=(":
            i += 1
        if i < len(rest) and rest[i] == "(":
            while i < len(rest) and not (rest[i] == ")" and (i + 1 == len(rest) or rest[i + 1] in ":=")):
                i += 1
            i += 1
        if rest[start:i]:
            constraints.append(rest[start:i])
    return Parameter(name, optional or default is not None, catch_all, tuple(constraint(c) for c in constraints))


def _segment(text: str) -> tuple:
    """One path segment of a template as its parts, in order."""
    parts: list = []
    literal, i = "", 0
    while i < len(text):
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            literal, i = literal + "{", i + 2
        elif ch == "}" and text.startswith("}}", i):
            literal, i = literal + "}", i + 2
        elif ch == "{":
            if literal:
                parts.append(literal)
                literal = ""
            inside, i = "", i + 1
            while True:
                if i >= len(text):
                    raise ValueError(f"unterminated parameter in route segment '{text}'")
                if text.startswith("{{", i) or text.startswith("}}", i):
                    inside, i = inside + text[i], i + 2
                elif text[i] == "}":
                    i += 1
                    break
                elif text[i] == "{":
                    raise ValueError(f"an unescaped '{{' inside a parameter in '{text}': write '{{{{'")
                else:
                    inside, i = inside + text[i], i + 1
            parts.append(_parameter(inside))
        elif ch == "}":
            raise ValueError(f"an unescaped '}}' in route segment '{text}'")
        else:
            literal, i = literal + ch, i + 1
    if literal:
        parts.append(literal)
    if len(parts) > 1 and any(isinstance(p, Parameter) and (p.optional or p.catch_all) for p in parts):
        raise ValueError(f"an optional or catch-all parameter inside '{text}' is not something the dev host imitates")
    if any(isinstance(a, Parameter) and isinstance(b, Parameter) for a, b in zip(parts, parts[1:], strict=False)):
        raise ValueError(f"'{text}' has two parameters in a row, which ASP.NET refuses")
    if "?" in "".join(p for p in parts if isinstance(p, str)):
        raise ValueError(f"'?' is not allowed in a route's literal text ('{text}')")
    return tuple(parts)


@dataclass(frozen=True)
class Template:
    text: str
    segments: tuple[tuple, ...]

    @classmethod
    def parse(cls, text: str) -> "Template":
        stripped = text.strip("/")
        return cls(text, tuple(_segment(s) for s in stripped.split("/")) if stripped else ())

    def match(self, path: str) -> dict[str, str] | None:
        """The route values when `path` (as Kestrel decoded it) matches, and each constraint holds; else None."""
        request = _tokens(path)
        values: dict[str, str] = {}
        for i, parts in enumerate(self.segments):
            whole = parts[0] if len(parts) == 1 else None
            if i < len(request) and not request[i]:  # '//': an empty segment never matches
                return None
            if isinstance(whole, Parameter) and whole.catch_all:
                rest = "/".join(request[i:])
                if rest:
                    values[whole.name] = rest
                break
            if i >= len(request):  # only optional parameters may be left over
                if isinstance(whole, Parameter) and whole.optional:
                    continue
                return None
            segment = request[i]
            if isinstance(whole, str):
                if _fold(segment) != _fold(whole):
                    return None
            elif isinstance(whole, Parameter):
                values[whole.name] = segment
            elif not _match_complex(parts, segment, values):
                return None
        else:
            if len(request) > len(self.segments):
                return None
        for parts in self.segments:
            for part in parts:
                if isinstance(part, Parameter) and part.name in values:
                    if not all(test(values[part.name]) for test in part.constraints):
                        return None
        return values


def _fold(text: str) -> str:
    """OrdinalIgnoreCase's view of text: each character upper-cased on its own (simple case mapping),
    so 'ß' stays one character and indexes into the folded text are indexes into the original."""
    if text.isascii():  # every ASCII character upper-cases to one character: the same answer, in C
        return text.upper()
    return "".join(u if len(u := c.upper()) == 1 else c for c in text)


def _tokens(path: str) -> list[str]:
    """PathTokenizer: the segments after the leading '/', one trailing '/' ignored."""
    path = path[1:] if path.startswith("/") else path
    if path.endswith("/"):
        path = path[:-1]
    return path.split("/") if path else []


def _match_complex(parts: tuple, segment: str, values: dict[str, str]) -> bool:
    """A segment mixing literals and parameters (`send.{format}`), matched as ASP.NET does: from the
    right, each literal found by its last occurrence, each parameter taking at least one character;
    a leading literal must reach the start and a trailing one the end."""
    if not segment:
        return False
    folded = _fold(segment)
    found: dict[str, str] = {}
    end = len(segment)  # everything right of `end` is accounted for
    pending: Parameter | None = None
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        if isinstance(part, Parameter):
            if pending is not None:  # two parameters in a row cannot be told apart
                return False
            pending = part
            if index == 0:
                found[part.name] = segment[:end]
                if not found[part.name]:
                    return False
            continue
        limit = end - 1 if pending is not None else end
        if limit <= 0:
            return False
        at = folded.rfind(_fold(part), 0, limit)
        if at == -1:
            return False
        if index == len(parts) - 1 and at + len(part) != len(segment):
            return False
        if pending is not None:
            found[pending.name] = segment[at + len(part):end]
            if not found[pending.name]:
                return False
            pending = None
        end = at
    if end != 0 and not isinstance(parts[0], Parameter):
        return False
    values.update(found)
    return True


def kestrel_path(raw_path: str) -> str:
    """The request path as routing sees it: percent-decoded except '%2F' (Kestrel's UrlDecoder keeps
    an encoded slash encoded), then with '.' and '..' segments removed (PathNormalizer)."""
    pieces = re.split(r"(%2[Ff])", raw_path.split("?", 1)[0])
    decoded = "".join(piece if i % 2 else _decode(piece) for i, piece in enumerate(pieces))
    return _remove_dot_segments(decoded)


def _decode(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:  # Kestrel leaves a sequence that is not UTF-8 as it came
        return text


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out) or "/"


# -- the route table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRoute:
    name: str  # the function's name
    route: str  # the route it declares (the function's name when it declares none)
    template: Template  # routePrefix + route
    methods: frozenset[str] | None  # None: every method (no "methods" in the binding)
    function: Callable = field(compare=False)
    arg_name: str = "req"

    def admits(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def route_table(routes: Iterable[HttpRoute], log: Callable[[str], None] = print) -> list[HttpRoute]:
    """The routes in the order the host tries them: by function name, OrdinalIgnoreCase. Routes the
    host would refuse to load are left out, as it leaves them out, with its reason."""
    table: list[HttpRoute] = []
    # OrdinalIgnoreCase compares upper-cased characters: '_' (0x5F) sorts after letters, unlike lower().
    for route in sorted(routes, key=lambda r: _fold(r.name)):
        text = route.route.strip("/")
        if text.lower().startswith(RESERVED_PREFIXES):  # ScriptHost.ValidateHttpFunction
            log(f"{route.name} is not loaded: route '{text}' conflicts with the host's built-in routes")
            continue
        rival = next((r for r in table if _fold(r.route.strip("/")) == _fold(text)
                      and (r.methods is None or route.methods is None or r.methods & route.methods)), None)
        if rival is not None:  # ScriptHost.HttpRoutesConflict
            log(f"{route.name} is not loaded: its route conflicts with the route defined by function '{rival.name}'")
            continue
        table.append(route)
    return table


def select(table: list[HttpRoute], method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
    """The route that serves (method, path), with its route values: the first that matches."""
    for route in table:
        if route.admits(method) and (values := route.template.match(path)) is not None:
            return route, values
    return None
