"""Smart encoding (issue 27): typographic characters replaced by their GSM-7 equivalents, so that one curly
quote does not send a whole message as UCS-2 (70 characters a segment, not 160: twice the segments).

A send's `smartEncoding: true` asks for it; the body is replaced before its segments are counted, and the
replaced body is what is stored and sent. Replaced whenever asked, whatever else the body holds (as Twilio's
and Telnyx's smart encoding do: the encoding is decided after the replacement); a body that still needs
UCS-2 (an emoji, a letter GSM-7 lacks) is sent as UCS-2 with its punctuation plain.

Only characters whose replacement keeps the meaning: punctuation and spaces, never letters (an accented
letter GSM-7 lacks stays: "ç" is not "c"). The table, by what the characters are:

| Characters | Become |
| --- | --- |
| single quotes and apostrophes: ‘ ’ ‚ ‛ ′ ‵ ʹ ʻ ʼ ʽ ˈ ˊ ˋ ´ ` ＇ ❛ ❜ | ' |
| double quotes: “ ” „ ‟ ″ ‶ « » ʺ ˮ 〝 〞 ＂ ❝ ❞ | " |
| dashes, hyphens and the minus sign: ‐ ‑ ‒ – — ― − ﹘ ﹣ － | - |
| the bullet • and the hyphen bullet ⁃ (a list's marker, as plain text writes it) | - |
| the horizontal ellipsis … | ... |
| the tab and the Unicode spaces: no-break, U+2000 to U+200A (en, em, thin ...), narrow no-break, mathematical, ideographic | a space |
| the line and paragraph separators (U+2028, U+2029) | a new line |
| the soft hyphen, the zero-width space, the word joiner and the byte order mark (a phone shows nothing) | nothing |

The reference for the quotes and spaces is Twilio's list of what its Smart Encoding replaces
(https://www.twilio.com/docs/messaging/services/smart-encoding-char-list). Not replaced: the single guillemets
‹ › (they would become < >, which read as something else), the zero-width joiner (it joins emoji, which
need UCS-2 anyway), and fullwidth letters and digits.
"""
from __future__ import annotations

_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u2035\u02b9\u02bb\u02bc\u02bd\u02c8\u02ca\u02cb\u00b4\u0060\uff07\u275b\u275c"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u02ba\u02ee\u301d\u301e\uff02\u275d\u275e"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_BULLETS = "\u2022\u2043"
_SPACES = "\u00a0" + "".join(chr(c) for c in range(0x2000, 0x200b)) + "\u202f\u205f\u3000\t"
_LINE_BREAKS = "\u2028\u2029"
_INVISIBLE = "\u00ad\u200b\u2060\ufeff"

# str.translate's table: each character's code point to its replacement.
GSM_EQUIVALENTS: dict[int, str] = {
    **{ord(c): "'" for c in _SINGLE_QUOTES},
    **{ord(c): '"' for c in _DOUBLE_QUOTES},
    **{ord(c): "-" for c in _DASHES + _BULLETS},
    ord("\u2026"): "...",
    **{ord(c): " " for c in _SPACES},
    **{ord(c): "\n" for c in _LINE_BREAKS},
    **{ord(c): "" for c in _INVISIBLE},
}


def with_gsm_equivalents(body: str) -> str:
    """`body` with every character of the table replaced; the rest as it was."""
    return body.translate(GSM_EQUIVALENTS)
