"""Logging what went wrong without the phone numbers in it.

Every record of the "sms" loggers reaches Application Insights (telemetry.configure), and exception
messages quote input: pydantic's its input_value, a parser the text it read, a vendor's SDK the
number it refused. So an error's traceback is logged as text with its numbers masked, never as
exc_info, which handlers would format (and exporters send) unmasked.
"""
from __future__ import annotations

import logging
import traceback

from .phone import mask_numbers


def log_unexpected(logger: logging.Logger, what: str, error: BaseException) -> None:
    """`what`, then the error's traceback with any phone number in it masked, as an error."""
    logger.error("%s\n%s", what, mask_numbers("".join(traceback.format_exception(error)).rstrip()))
