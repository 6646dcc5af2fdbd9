"""Storage ports: what the service needs from tables and queues, nothing about how.

Adapters: `sms.storage.tables` (azure-data-tables) and `sms.storage.queues`
(azure-storage-queue); tests use in-memory fakes of the same ports.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from ..model import Message, Recipient, SendJob


class MessageStore(abc.ABC):
    @abc.abstractmethod
    async def add(self, message: Message, recipients: Sequence[Recipient]) -> list[Recipient]:
        """Save a message and its recipients; return the recipients with their ETags.

        All or nothing from a reader's point of view: the message only becomes visible
        once every recipient is stored.
        """

    @abc.abstractmethod
    async def load(self, comm_id: str, first: int = 0, last: int | None = None) -> tuple[Message, list[Recipient]] | None:
        """The message and its recipients in [first, last] (all when last is None), in order."""

    @abc.abstractmethod
    async def update_recipients(self, comm_id: str, recipients: Sequence[Recipient]) -> list[Recipient]:
        """Write these recipients if none changed since read (ETag); all or none.

        Raises RecordChanged when any ETag no longer matches. Returns them with new ETags.
        """


class JobQueue(abc.ABC):
    @abc.abstractmethod
    async def put(self, job: SendJob, *, delay_seconds: int = 0) -> None:
        ...


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    licensee_id: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    name: str | None = None


class ApiKeyStore(abc.ABC):
    @abc.abstractmethod
    async def add(self, record: ApiKeyRecord) -> None: ...

    @abc.abstractmethod
    async def get(self, key_id: str) -> ApiKeyRecord | None: ...

    @abc.abstractmethod
    async def list(self, licensee_id: str | None = None) -> list[ApiKeyRecord]: ...

    @abc.abstractmethod
    async def revoke(self, key_id: str, when: datetime) -> bool:
        """True when the key existed."""
