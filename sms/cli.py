"""Command line for operators: `python -m sms keys create|list|revoke`, and
`python -m sms simulate inbound|receipt` to post what ACS would to a running gateway.

Reads settings like the app does (environment, then local.settings.json).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.error
from datetime import datetime, timedelta
from typing import Awaitable, Callable, TypeVar

from . import simulate
from .auth import KeyLimitReached, issue_key, rotate_key
from .bootstrap import Adapters, build
from .config import ConfigError, Settings, load_local_settings
from .errors import StorageUnavailable
from .model import utcnow
from .storage import ApiKeyRecord
from .phone import InvalidNumber, to_e164
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


async def with_adapters(work: Callable[[Adapters], Awaitable[T]]) -> T:
    adapters = build(Settings.from_env())
    try:
        await adapters.ensure_storage()
        return await work(adapters)
    finally:
        await adapters.close()


async def create_key(licensee_id: str, name: str | None = None, expires_at: datetime | None = None) -> str:
    """Store a new key for the licensee and return it; this is the only time it is seen."""
    return await with_adapters(lambda adapters: issue_key(adapters.keys, licensee_id, name, expires_at))


def _print_keys(records: list[ApiKeyRecord]) -> None:
    now = utcnow()
    print(f"{'KEY ID':<18} {'LICENSEE':<34} {'CREATED':<26} {'STATUS':<8} {'EXPIRES':<26} NAME")
    for r in records:
        status = "revoked" if r.revoked_at else "active" if r.active(now) else "expired"
        expires = r.expires_at.isoformat(timespec="seconds") if r.expires_at else "never"
        print(f"{r.key_id:<18} {r.licensee_id:<34} {r.created_at.isoformat(timespec='seconds'):<26} {status:<8} {expires:<26} {r.name or ''}")


def _positive_days(text: str) -> float:
    days = float(text)
    if days <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 days")
    return days


def _number(text: str) -> str:
    try:
        return to_e164(text, os.environ.get("SMS_DEFAULT_REGION", "AU"))
    except InvalidNumber as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _simulate(args: argparse.Namespace) -> int:
    if args.action == "inbound":
        event = simulate.inbound_event(args.from_number, args.text)
    else:
        event = simulate.receipt_event(args.comm_id, args.recipient, args.status == "delivered")
    try:
        status, answer = simulate.post(event, args.url, os.environ.get("SMS_EVENTGRID_SECRET"))
    except urllib.error.URLError as exc:
        print(f"error: could not reach the gateway at {args.url} ({exc.reason}): is `make run` running?", file=sys.stderr)
        return 1
    if not 200 <= status < 300:
        print(f"error: the gateway answered {status}: {answer}", file=sys.stderr)
        return 1
    print(f"Posted {event['eventType']} to {args.url}: {status}")
    return 0


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
    create.add_argument("--expires-in-days", type=_positive_days, help="stop working after this many days (default: never)")
    rotate = keys.add_parser("rotate", help="create a new key; the licensee's current key stops working after --grace-hours")
    rotate.add_argument("--licensee", required=True, type=_guid)
    rotate.add_argument("--grace-hours", type=float, default=24.0, help="how long the old key keeps working (default 24)")
    rotate.add_argument("--name", help="a label to recognise the new key by")
    listing = keys.add_parser("list", help="list keys (never the secrets)")
    listing.add_argument("--licensee", type=_guid)
    revoke = keys.add_parser("revoke", help="revoke a key by its key id (or the whole key)")
    revoke.add_argument("key_id")
    fake = commands.add_parser("simulate", help="post what ACS would (an SMS from a person, a delivery receipt) to a running gateway")
    fake = fake.add_subparsers(dest="action", required=True)
    inbound = fake.add_parser("inbound", help="a person texts the gateway: a reply, or STOP / START")
    inbound.add_argument("--from", dest="from_number", required=True, type=_number, help="the person's number")
    inbound.add_argument("--text", required=True, help="what they wrote, e.g. 'Yes' or 'STOP'")
    receipt = fake.add_parser("receipt", help="the carrier reports a recipient's SMS delivered or failed")
    receipt.add_argument("comm_id", type=_guid, help="the commId a send answered with")
    receipt.add_argument("--recipient", type=int, default=0, help="which recipient, in request order from 0 (default 0)")
    receipt.add_argument("--status", choices=("delivered", "failed"), default="delivered")
    for command in (inbound, receipt):
        command.add_argument("--url", default=simulate.LOCAL_GATEWAY, help=f"the gateway (default {simulate.LOCAL_GATEWAY}, make run's)")
    load_local_settings()  # before the arguments: a number is read in SMS_DEFAULT_REGION
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.action == "create":
            expires = utcnow() + timedelta(days=args.expires_in_days) if args.expires_in_days else None
            key = asyncio.run(create_key(args.licensee, args.name, expires))
            print(f"Created an API key for licensee {args.licensee}. Store it now: it cannot be shown again.")
            print(key)
        elif args.action == "rotate":
            key, ending = asyncio.run(with_adapters(lambda adapters: rotate_key(adapters.keys, args.licensee, timedelta(hours=args.grace_hours), args.name)))
            print(f"Created a new API key for licensee {args.licensee}; {', '.join(ending) or 'no other key'} "
                  f"stop(s) working in {args.grace_hours:g} hours. Store it now: it cannot be shown again.")
            print(key)
        elif args.action == "list":
            _print_keys(asyncio.run(with_adapters(lambda adapters: adapters.keys.list(args.licensee))))
        else:
            key_id = _key_id(args.key_id)  # never echo a secret back, even when given the whole key
            if not asyncio.run(with_adapters(lambda adapters: adapters.keys.revoke(key_id, utcnow()))):
                print(f"No key with id {key_id}", file=sys.stderr)
                return 1
            print(f"Revoked {key_id}")
    except (ConfigError, StorageUnavailable, KeyLimitReached) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
