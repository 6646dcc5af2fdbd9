"""Logging what went wrong without the phone numbers or API key secrets in it.

Every record of the "sms" loggers reaches Application Insights (telemetry.configure), and exception
messages quote input: pydantic's its input_value, a parser the text it read, a vendor's SDK the
number it refused. So an error's traceback is logged as text with its numbers masked, never as
exc_info, which handlers would format (and exporters send) unmasked. Loggers the gateway does not
write to, but whose records quote what a client sent (aiohttp's, in the dev host), get the same
treatment from `MaskedRecords`.
"""
from __future__ import annotations

import logging
import re
import traceback

from .domain.phone import mask_numbers

# An API key's secret (sms_<id>.<secret>: the id may stay, it finds nothing on its own), and the
# credentials after an Authorization scheme (Basic carries the key in base64), wherever text quotes them.
_KEY_SECRET = re.compile(r"(sms_[0-9A-Za-z]*\.)[A-Za-z0-9_\-]+")
_CREDENTIALS = re.compile(r"\b(Bearer|Basic)(\s+)[^\s'\"\\]+", re.IGNORECASE)
HIDDEN = "***"


def masked(text: str) -> str:
    """`text` for a log: key secrets and Authorization credentials hidden, phone numbers masked."""
    text = _CREDENTIALS.sub(rf"\1\2{HIDDEN}", text)
    return mask_numbers(_KEY_SECRET.sub(rf"\1{HIDDEN}", text))


def log_unexpected(logger: logging.Logger, what: str, error: BaseException) -> None:
    """`what`, then the error's traceback with any phone number or key secret in it masked, as an error."""
    logger.error("%s\n%s", what, masked("".join(traceback.format_exception(error)).rstrip()))


class MaskedRecords(logging.Filter):
    """A logger filter: each record's message and traceback become one masked text, with no exc_info
    left for a handler to format unmasked. For loggers whose text the gateway does not write."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + record.stack_info
        record.msg, record.args = masked(text), None
        record.exc_info = record.exc_text = record.stack_info = None
        return True
