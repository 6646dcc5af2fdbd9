"""ServiceStack's JSV text format: `{Key:Value,...}`, `[a,b]`, CSV-style quoting.

A string is quoted with `"` only when it contains one of `" : , { } [ ]`, CR or LF (ServiceStack's
JsWriter.EscapeChars) or has leading or trailing white space; an inner `"` is doubled. Null values
are omitted. Every scalar reads back as `Text`, a string: the DTO gives it its type, and knows from
`Text` that it is reading a value's wire text (a JSON string is a string, nothing else).

The reader skips white space between tokens and trims unquoted values, so the pretty-printed
JSV of ServiceStack's metadata pages reads as well as the compact form.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

MAX_DEPTH = 32

_ESCAPE_CHARS = frozenset('":,{}[]\r\n')
_WHITESPACE = " \t\r\n"
# An unquoted token runs up to its context's terminator; a bracket inside one is an error.
# Unquoted values may hold ':' (ServiceStack reads "10:30" that way); keys may not.
_BARE = {
    "": re.compile(r"[^{}\[\]]*"),
    ",}": re.compile(r"[^,{}\[\]]*"),
    ",]": re.compile(r"[^,{}\[\]]*"),
    ":,}": re.compile(r"[^:,{}\[\]]*"),
}


class Text(str):
    """A scalar as JSV or a form carries it: text, whatever type it stands for (`True`, `7200`). The DTOs
    parse it as its field's type; a JSON value keeps its JSON type and is never one of these."""

    __slots__ = ()


class JsvError(ValueError):
    def __init__(self, message: str, position: int):
        super().__init__(f"{message} at position {position}")
        self.position = position


# -- writing -------------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if item is None:
                continue
            if not first:
                out.append(",")
            first = False
            out.append(quote(str(key)))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write("" if item is None else item, out)
        out.append("]")
    elif isinstance(value, bool):
        out.append("True" if value else "False")
    elif isinstance(value, datetime):
        # As ServiceStack writes a DateTime: UTC with a 'Z', as the JSON answers write it (Common/DateTimeSerializer.cs), and
        # unquoted (Jsv/JsvTypeSerializer.WriteDateTime); a reader takes the ':' in an unquoted value.
        text = value.isoformat()
        out.append(text[:-6] + "Z" if text.endswith("+00:00") else text)
    else:
        out.append(quote(str(value)))


def quote(text: str) -> str:
    if not text:
        return '""'  # an empty item must stay visible: [""] is not []
    if text[0] in _WHITESPACE or text[-1] in _WHITESPACE or not _ESCAPE_CHARS.isdisjoint(text):
        return '"' + text.replace('"', '""') + '"'
    return text


# -- reading -------------------------------------------------------------------------------------


def loads(text: str, max_depth: int = MAX_DEPTH) -> Any:
    reader = _Reader(text, max_depth)
    reader.skip_space()
    if reader.at_end():
        raise JsvError("empty JSV document", 0)
    value = reader.value(depth=0, terminators="")
    reader.skip_space()
    if not reader.at_end():
        raise JsvError(f"unexpected {reader.text[reader.pos]!r} after the value", reader.pos)
    return value


class _Reader:
    def __init__(self, text: str, max_depth: int):
        self.text = text
        self.pos = 0
        self.max_depth = max_depth

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_space(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        self.pos = pos

    def value(self, depth: int, terminators: str) -> Any:
        self.skip_space()
        if self.at_end():
            return Text()
        char = self.text[self.pos]
        if char == "{":
            return self.map(depth + 1)
        if char == "[":
            return self.list(depth + 1)
        if char == '"':
            return Text(self.quoted())
        return Text(self.bare(terminators))

    def map(self, depth: int) -> dict:
        self._check_depth(depth)
        self.pos += 1  # {
        result: dict[str, Any] = {}
        self.skip_space()
        if self._take("}"):
            return result
        while True:
            self.skip_space()
            key = self.quoted() if self._peek('"') else self.bare(":,}")
            self.skip_space()
            if not self._take(":"):
                raise JsvError(f"expected ':' after the key {key!r}", self.pos)
            result[key] = self.value(depth, ",}")
            self.skip_space()
            if self._take(","):
                continue
            if self._take("}"):
                return result
            raise JsvError("expected ',' or '}' in a map", self.pos)

    def list(self, depth: int) -> list:
        self._check_depth(depth)
        self.pos += 1  # [
        result: list[Any] = []
        self.skip_space()
        if self._take("]"):
            return result
        while True:
            result.append(self.value(depth, ",]"))
            self.skip_space()
            if self._take(","):
                continue
            if self._take("]"):
                return result
            raise JsvError("expected ',' or ']' in a list", self.pos)

    def quoted(self) -> str:
        start = self.pos
        self.pos += 1  # opening "
        text = self.text
        chunks = []
        while True:
            end = text.find('"', self.pos)
            if end < 0:
                raise JsvError("unterminated quoted string", start)
            chunks.append(text[self.pos:end])
            if text.startswith('""', end):
                chunks.append('"')
                self.pos = end + 2
                continue
            self.pos = end + 1
            return "".join(chunks)

    def bare(self, terminators: str) -> str:
        start, text = self.pos, self.text
        end = _BARE[terminators].match(text, start).end()
        if end < len(text) and text[end] not in terminators:
            hint = " (quote it)" if text[end] in "{[" else ""
            raise JsvError(f"unexpected {text[end]!r} inside a value{hint}", end)
        self.pos = end
        return text[start:end].strip(_WHITESPACE)

    def _peek(self, char: str) -> bool:
        return self.pos < len(self.text) and self.text[self.pos] == char

    def _take(self, char: str) -> bool:
        if self._peek(char):
            self.pos += 1
            return True
        return False

    def _check_depth(self, depth: int) -> None:
        if depth > self.max_depth:
            raise JsvError(f"nested deeper than {self.max_depth} levels", self.pos)
