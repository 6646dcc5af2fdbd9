"""Command line for operators: `python -m sms keys create|list|revoke`.

Reads settings like the app does (environment, then local.settings.json).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Awaitable, Callable, TypeVar

from .auth import new_key
from .bootstrap import Gateway, build
from .config import ConfigError, Settings, load_local_settings
from .errors import StorageUnavailable
from .model import utcnow
from .storage import ApiKeyRecord
from .wire import parse_guid

T = TypeVar("T")


def _guid(text: str) -> str:
    try:
        value = parse_guid(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value is None:
        raise argparse.ArgumentTypeError("the licensee id must be a non-empty Guid")
    return value


async def _with_gateway(work: Callable[[Gateway], Awaitable[T]]) -> T:
    gateway = build(Settings.from_env())
    try:
        await gateway.ensure_storage()
        return await work(gateway)
    finally:
        await gateway.close()


async def create_key(licensee_id: str, name: str | None = None) -> str:
    """Store a new key for the licensee and return it; this is the only time it is seen."""
    key, record = new_key(licensee_id, name)
    await _with_gateway(lambda gateway: gateway.keys.add(record))
    return key


def _print_keys(records: list[ApiKeyRecord]) -> None:
    print(f"{'KEY ID':<18} {'LICENSEE':<34} {'CREATED':<26} {'STATUS':<8} NAME")
    for r in records:
        status = "revoked" if r.revoked_at else "active"
        print(f"{r.key_id:<18} {r.licensee_id:<34} {r.created_at.isoformat(timespec='seconds'):<26} {status:<8} {r.name or ''}")


def _key_id(key_or_id: str) -> str:
    """Accept the key id or the whole key: `sms_<keyid>.<secret>`."""
    return key_or_id.removeprefix("sms_").split(".")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sms")
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key; it is printed once, alone on the last line")
    create.add_argument("--licensee", required=True, type=_guid, help="the licensee (Guid) the key sends as")
    create.add_argument("--name", help="a label to recognise the key by")
    listing = keys.add_parser("list", help="list keys (never the secrets)")
    listing.add_argument("--licensee", type=_guid)
    revoke = keys.add_parser("revoke", help="revoke a key by its key id (or the whole key)")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)

    load_local_settings()
    try:
        if args.action == "create":
            key = asyncio.run(create_key(args.licensee, args.name))
            print(f"Created an API key for licensee {args.licensee}. Store it now: it cannot be shown again.")
            print(key)
        elif args.action == "list":
            _print_keys(asyncio.run(_with_gateway(lambda gateway: gateway.keys.list(args.licensee))))
        else:
            key_id = _key_id(args.key_id)  # never echo a secret back, even when given the whole key
            if not asyncio.run(_with_gateway(lambda gateway: gateway.keys.revoke(key_id, utcnow()))):
                print(f"No key with id {key_id}", file=sys.stderr)
                return 1
            print(f"Revoked {key_id}")
    except (ConfigError, StorageUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
