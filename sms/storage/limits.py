"""Azure's limits on an entity-group transaction and its entities, checked before anything is sent.

Azure refuses transactions and entities past these limits. Azurite enforces few of them, so a test
against it would pass where Azure fails: every table write checks them here first, whoever writes
the request (the hand-written $batch of sms/storage/handwritten/, or the SDK's submit_transaction).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping
from xml.sax.saxutils import escape

from azure.data.tables import EntityProperty

from ..domain.model import COMPACT_JSON
from .handwritten.odata import entity_json

# "All entities subject to operations as part of the transaction must have the same PartitionKey
# value." "The transaction can include at most 100 entities, and its total payload may be no more
# than 4 MiB in size." (Performing entity group transactions,
# https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions)
MAX_OPERATIONS = 100
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# "An entity can have up to 255 properties, including 3 system properties [PartitionKey, RowKey,
# Timestamp]. Therefore, the user may include up to 252 custom properties." "Property names are
# case-sensitive strings up to 255 characters in size." Edm.String: "A UTF-16-encoded value. String
# values may be up to 64 KiB in size." (Understanding the Table service data model,
# https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model)
# "Maximum size of a single entity, including all property values: 1 MiB" and "Maximum number of
# properties in a table entity: 255 (including the three system properties ...)" (Scalability and
# performance targets for Table storage, https://learn.microsoft.com/en-us/azure/storage/tables/scalability-targets)
MAX_CUSTOM_PROPERTIES = 255 - 3
MAX_PROPERTY_NAME_CHARS = 255
MAX_STRING_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
_SYSTEM_PROPERTIES = frozenset({"PartitionKey", "RowKey", "Timestamp"})
# "The encoded message can be up to 64 kibibytes (KiB) in size for version 2011-08-18 and later" (Put Message,
# https://learn.microsoft.com/en-us/rest/api/storageservices/put-message); "Maximum size of a message in a queue:
# 64 KiB" (https://learn.microsoft.com/en-us/azure/storage/queues/scalability-targets). Azurite takes larger ones.
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024
# Put Message: "The message must be in a format that can be included in an XML request with UTF-8 encoding" (as above).
# XML 1.0 has no other characters than Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
# (https://www.w3.org/TR/xml/#charsets). Unencoded, a job's text goes into that XML as it is: JSON escapes the control
# characters, but a whole job (sms/domain/jobs.py) writes the rest unescaped, so U+FFFE and U+FFFF in a body or a name
# (valid Unicode, taken by validation) would reach Azure as XML it refuses. Base64 carries any bytes.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class StorageLimitExceeded(Exception):
    """A write Azure would refuse, refused here before anything was sent. `limit` names which:
    PartitionKey, Operations, RequestSize, PropertyCount, PropertyName, StringSize or EntitySize.
    Input is validated well inside these limits, so this is a bug, never the caller's fault."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit


def check_entity(entity: Mapping[str, Any], json_bytes: int | None = None) -> None:
    """Refuses an entity Azure would refuse: too many properties, a name too long, a string over
    64 KiB or an entity over 1 MiB (as Azure counts them). `json_bytes`: the size of its JSON in a
    transaction's body, when the caller has written it already."""
    # Counted only when there could be too many: the keys and None values (not stored) do not count.
    if len(entity) > MAX_CUSTOM_PROPERTIES:
        custom = sum(1 for name, value in entity.items() if value is not None and name not in _SYSTEM_PROPERTIES)
        if custom > MAX_CUSTOM_PROPERTIES:
            raise StorageLimitExceeded("PropertyCount", (
                f"{_where(entity)} has {custom} properties besides PartitionKey, RowKey and Timestamp; Azure allows "
                f"{MAX_CUSTOM_PROPERTIES} (255 with those three)"))
    if max(map(len, entity)) > MAX_PROPERTY_NAME_CHARS:
        name = max(entity, key=len)
        raise StorageLimitExceeded("PropertyName", (
            f"{_where(entity)}: property name {name[:40]!r}... is {len(name)} characters; Azure allows {MAX_PROPERTY_NAME_CHARS}"))
    if json_bytes is None:
        json_bytes = len(COMPACT_JSON.encode(entity_json(entity)))
    # The JSON is ASCII (json.dumps escapes the rest) and spends at least one byte per UTF-16 code unit
    # of a string (an ASCII character 1 or 2, any other 6 per code unit), so no string in a body of
    # 32 KiB or less can be over 64 KiB, nor the entity near 1 MiB. Only larger ones are measured.
    if 2 * json_bytes <= MAX_STRING_BYTES:
        return
    for name, value in entity.items():
        if isinstance(value, str) and (size := 2 * utf16_units(value)) > MAX_STRING_BYTES:
            raise StorageLimitExceeded("StringSize", (
                f"{_where(entity)}: property {name} is {size} bytes as UTF-16 ({len(value)} characters); Azure allows "
                f"{MAX_STRING_BYTES} bytes (64 KiB) in a string property"))
    if (size := entity_size(entity)) > MAX_ENTITY_BYTES:
        raise StorageLimitExceeded("EntitySize", (
            f"{_where(entity)} is {size} bytes as Azure counts an entity's size; Azure allows {MAX_ENTITY_BYTES} (1 MiB)"))


def queue_message_bytes(text: str, encoding: str) -> int | None:
    """The size of `text` as a queue message's encoded text, in host.json's messageEncoding (`encoding`): base64 (the
    trigger's default: "Functions expect a base64 encoded string", learn.microsoft.com/azure/azure-functions/
    functions-bindings-storage-queue-trigger, Encoding) is 4 characters for every 3 bytes of UTF-8, padded (RFC 4648
    section 4), as TextBase64EncodePolicy and our own put write it; none is the text as XML writes it, escaped, in
    UTF-8. None for text no put can carry (a lone surrogate is not UTF-8; unencoded, a character XML has not)."""
    try:
        if encoding == "base64":
            return 4 * ((len(text.encode()) + 2) // 3)
        if _NOT_XML.search(text):
            return None
        return len(escape(text).encode())
    except UnicodeEncodeError:
        return None


def fits_queue_message(text: str, encoding: str) -> bool:
    size = queue_message_bytes(text, encoding)
    return size is not None and size <= MAX_QUEUE_MESSAGE_BYTES


def check_operations(count: int) -> None:
    if count > MAX_OPERATIONS:
        raise StorageLimitExceeded("Operations", f"A transaction holds at most {MAX_OPERATIONS} operations "
                                                 f"(Azure's limit); this one has {count}")


def check_request_size(size: int, whose: str) -> None:
    """`whose`: how the message names the request and its size, e.g. "this one is 5000000 bytes"."""
    if size > MAX_REQUEST_BYTES:
        raise StorageLimitExceeded("RequestSize", (
            f"A transaction's request is at most {MAX_REQUEST_BYTES} bytes (4 MiB, Azure's limit); {whose}"))


def check_sdk_request_size(pipeline_request: Any) -> None:
    """Sees the SDK's own $batch body just before it is sent, and refuses one over Azure's 4 MiB: as a
    request hook of submit_transaction (SMS_STORAGE_REQUESTS=sdk, and the tables only the SDK writes).
    (A request hook given per call replaces one the client was built with; the gateway builds its
    clients with none.)"""
    content = pipeline_request.http_request.content
    if isinstance(content, (bytes, bytearray)):
        check_request_size(len(content), f"the SDK wrote {len(content)} bytes")


def _where(entity: Mapping[str, Any]) -> str:
    return f"Entity (PartitionKey={entity['PartitionKey']!r}, RowKey={entity['RowKey']!r})"


def entity_size(entity: Mapping[str, Any]) -> int:
    """An entity's size as Azure counts it against the 1 MiB limit: "4 bytes + Len (PartitionKey +
    RowKey) * 2 bytes + For-Each Property(8 bytes + Len(Property Name) * 2 bytes + Sizeof(.Net
    Property Type))", where a string is "# of Characters * 2 bytes + 4 bytes for length of string",
    DateTime 8, Int 4 and Bool 1 ("How the size of an entity is calculated in Windows Azure table
    storage", https://learn.microsoft.com/en-us/archive/blogs/avkashchauhan/how-the-size-of-an-entity-is-caclulated-in-windows-azure-table-storage).
    Characters are UTF-16 code units, as Azure stores strings."""
    size = 4
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            size += 2 * utf16_units(str(value))
        elif value is None:  # not stored
            continue
        elif isinstance(value, str):
            size += 8 + 2 * utf16_units(name) + 2 * utf16_units(value) + 4
        else:
            value_size = 1 if isinstance(value, bool) else 8 if isinstance(value, (datetime, EntityProperty)) else 4
            size += 8 + 2 * utf16_units(name) + value_size
    return size


def utf16_units(text: str) -> int:
    # A character outside the Basic Multilingual Plane (an emoji) is two UTF-16 code units.
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2
