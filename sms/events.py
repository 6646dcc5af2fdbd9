"""The events a licensee can be told about through its webhook endpoints (issue 15): their names,
defined once. An endpoint lists the ones it wants; none listed means every one."""
from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "message.sent",
    "message.delivered",
    "message.undelivered",
    "message.failed",
    "message.opted_out",
    "reply.received",
    "optout.changed",
)
