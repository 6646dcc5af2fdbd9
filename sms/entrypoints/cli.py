"""Command line for operators: `python -m sms keys create|rotate|list|revoke`, `messages list` and `usage`
(a licensee's ledger, as GET /api/sms and /api/usage answer it), `usage rebuild` (count days' usage
again from the ledger), `messages cancel` (as DELETE
/api/sms/{commId}), `licensees show|set` (a licensee's quiet hours and time zone), `routes show|set` (a
licensee's own routing table, as /api/routes manages it, or the deployment's default), `guard show|set` (a licensee's
guard: sms/entrypoints/cli_guard.py), `webhooks add|list|rotate-secret|
remove|enable|deliveries|replay` (a licensee's webhook endpoints, their delivery log and replays,
through the use cases /api/webhooks runs), and `python -m sms simulate inbound|receipt` to post what
ACS would to a running gateway.

Reads settings like the app does (environment, then local.settings.json).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import urllib.error
from datetime import date, datetime, timedelta
from typing import Awaitable, Callable, TypeVar

from ..bootstrap import Adapters, build
from ..config import LOCAL_GATEWAY, ConfigError, Settings, load_local_settings
from ..domain.errors import Conflict, FieldError, LimitReached, NotFound, StorageUnavailable, ValidationFailed
from ..domain.events import EVENT_TYPES
from ..domain.model import Status, reference_for, status_of, utcnow
from ..domain.phone import InvalidNumber, to_e164
from ..domain.routing import MAX_TEXT_CHARS, RoutingTable, parse_table, table_text
from ..storage import KEY_ROLE_LICENSEE, KEY_ROLES, ApiKeyRecord, DeliveryRecord, LicenseeSettings, WebhookEndpoint
from ..usecases.auth import KeyLimitReached, KeyNotChosen, Rotation, issue_key, revoke_key, rotate_key
from ..usecases.cancel import CancelResult
from ..usecases.delivery import MAX_LOG_TAKE, WebhookDelivery
from ..usecases.ledger import MAX_TAKE, Ledger, statuses_of
from ..usecases.licensees import CACHE_SECONDS
from ..usecases.optouts import OptOuts
from ..usecases.usage import MAX_REBUILD_DAYS
from ..wire import parse_guid
from ..wire.dto import WebhookReplayRequest
from ..wire.mapping import ledger_query, replay_request, usage_range
from .cli_guard import add_guard_commands, guard

T = TypeVar("T")


def _guid_named(what: str) -> Callable[[str], str]:
    """An argparse type: a Guid, normalised, or an error saying which argument must be one."""

    def parse(text: str) -> str:
        try:
            value = parse_guid(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if value is None:
            raise argparse.ArgumentTypeError(f"{what} must be a non-empty Guid")
        return value

    return parse


_guid = _guid_named("the licensee id")
_comm_id = _guid_named("a commId")


async def with_adapters(work: Callable[[Adapters], Awaitable[T]]) -> T:
    adapters = build(Settings.from_env())
    try:
        await adapters.ensure_storage()
        return await work(adapters)
    finally:
        await adapters.close()


async def create_key(licensee_id: str, name: str | None = None, expires_at: datetime | None = None,
                     role: str = KEY_ROLE_LICENSEE, read_only: bool = False) -> str:
    """Store a new key for the licensee and return it; this is the only time it is seen."""
    return await with_adapters(lambda adapters: issue_key(adapters.keys, licensee_id, name, expires_at, role, read_only))


def _print_keys(records: list[ApiKeyRecord]) -> None:
    now = utcnow()
    print(f"{'KEY ID':<18} {'LICENSEE':<34} {'ROLE':<9} {'ACCESS':<10} {'CREATED':<26} {'STATUS':<8} {'EXPIRES':<26} NAME")
    for r in records:
        status = "revoked" if r.revoked_at else "active" if r.active(now) else "expired"
        expires = r.expires_at.isoformat(timespec="seconds") if r.expires_at else "never"
        created = r.created_at.isoformat(timespec="seconds")
        access = "read-only" if r.read_only else "full"
        print(f"{r.key_id:<18} {r.licensee_id:<34} {r.role:<9} {access:<10} {created:<26} {status:<8} {expires:<26} {r.name or ''}")




def rotation_summary(licensee_id: str, rotation: Rotation) -> str:
    name = f" '{rotation.key_name}'" if rotation.key_name else ""
    if rotation.replaced is None:
        done = f"Created a new API key{name} for licensee {licensee_id} (it had no active key to replace)."
    else:
        old = rotation.replaced
        old_name = f" '{old.name}'" if old.name else ""
        done = (f"Created a new API key{name} for licensee {licensee_id}, replacing key {old.key_id}{old_name}, which stops "
                f"working at {rotation.replaced_until.isoformat(timespec='seconds')}.")
    return done + " Store the new key now: it cannot be shown again."


def _hours(text: str) -> float:
    hours = float(text)
    if not 0 <= hours < 24 * 366:
        raise argparse.ArgumentTypeError("must be from 0 hours to a year")
    return hours


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


async def _has_recipient(adapters: Adapters, comm_id: str, seq: int) -> bool:
    loaded = await adapters.messages.load(comm_id, seq, seq) if seq >= 0 else None
    return bool(loaded and loaded[1])


def _simulate(args: argparse.Namespace) -> int:
    from ..dev import simulate  # local tooling: left out of the deployed package, so imported only here

    if args.action == "inbound":
        event = simulate.inbound_event(args.from_number, args.text)
    else:
        # The gateway answers Event Grid 200 for a receipt it has no message for (a 4xx has Event Grid retry it), so
        # what does not exist is looked up here, in the storage the settings name (make run's): exit 1, as README says.
        if not asyncio.run(with_adapters(lambda adapters: _has_recipient(adapters, args.comm_id, args.recipient))):
            raise NotFound(f"No message with commId {args.comm_id} and a recipient {args.recipient} (counted from 0) in the "
                           "gateway's storage: nothing posted")
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


# `messages list` options -> GET /api/sms's query parameters: one reader (sms.wire.mapping) for both.
_LIST_OPTIONS = {"from_": "from", "to": "to", "status": "status", "phone": "phoneNumber", "contact_id": "contactId",
                 "linked_object_id": "linkedObjectId", "suite_id": "suiteId", "reference": "reference"}


async def _messages(adapters: Adapters, args: argparse.Namespace) -> None:
    params = {name: str(value) for option, name in _LIST_OPTIONS.items() if (value := getattr(args, option)) is not None}
    query, _, _ = ledger_query(params, args.licensee, adapters.settings.default_region)
    ledger, token, shown = Ledger(adapters.ledger), None, 0
    print(f"{'CREATED':<19} {'COMMID':<33} {'REFERENCE':<13} {'STATUS':<30} {'RECIPIENTS':<10} PREVIEW")
    while shown < args.take:
        entries, token = await ledger.page(query, min(MAX_TAKE, args.take - shown), token)
        for e in entries:
            status = f"{e.matched.phone_number} {e.matched.status}" if e.matched else status_of(statuses_of(e))
            print(f"{e.created_at:%Y-%m-%d %H:%M:%S} {e.comm_id:<33} {reference_for(e.comm_id):<13} {status:<30} "
                  f"{e.recipient_count:<10} {e.preview!r}")
        shown += len(entries)
        if token is None:
            break


async def _cancel(adapters: Adapters, args: argparse.Namespace) -> None:
    """Through the same use case as DELETE /api/sms/{commId}."""
    print(cancel_summary(await adapters.gateway().use.cancel.cancel(args.licensee, args.comm_id)))


def cancel_summary(result: CancelResult) -> str:
    """What a cancel did: recipients cancelled now, those a cancel before had, and those that had gone past waiting."""
    parts = [f"Cancelled {result.cancelled} recipient(s) of message {result.comm_id}"]
    others = dict(result.unaffected)
    if before := others.pop(Status.CANCELLED.value, 0):
        parts.append(f"{before} already cancelled")
    if others:
        parts.append("not cancelled (already past waiting): " + ", ".join(f"{n} {status}" for status, n in sorted(others.items())))
    return "; ".join(parts) + "."


def _print_licensee(settings: LicenseeSettings) -> None:
    print(f"Licensee {settings.licensee_id}")
    print(f"  Quiet hours: {settings.quiet_hours or 'none'}" + (
        " (in each recipient's local time, from its number; a number whose zone is not known, or spans several, "
        f"uses {settings.time_zone})" if settings.quiet_hours else ""))
    print(f"  Time zone:   {settings.time_zone}")
    if settings.updated_at is not None:
        print(f"  Updated:     {settings.updated_at.isoformat(timespec='seconds')}")


async def _licensees(adapters: Adapters, args: argparse.Namespace) -> None:
    licensees = adapters.gateway().use.licensees
    if args.action == "show":
        _print_licensee(await licensees.settings(args.licensee))
        return
    _print_licensee(await licensees.set(args.licensee, quiet_hours=args.quiet_hours, no_quiet_hours=args.no_quiet_hours,
                                        time_zone=args.time_zone))
    print(f"Saved. Every worker uses it within {CACHE_SECONDS:g} s.")


def _day(text: str) -> date:
    """An argparse type: a day written YYYY-MM-DD."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError("must be a day, e.g. 2026-12-01")


async def _rebuild(adapters: Adapters, args: argparse.Namespace) -> None:
    """Count the days again from the ledger and replace their totals (sms/usecases/usage.py Usage.rebuild)."""
    rebuilt = await adapters.gateway().use.usage.rebuild(args.rebuild_from, args.rebuild_to, args.rebuild_licensee)
    span = f"from {args.rebuild_from.isoformat()} to {args.rebuild_to.isoformat()}"
    if not rebuilt:
        print(f"No licensee has messages {span}: nothing to recount.")
    for r in rebuilt:
        removed = f"; {r.removed} total(s) removed, of days with no messages in {r.zone}" if r.removed else ""
        print(f"Licensee {r.licensee_id} (its days in {r.zone}): {r.saved} day(s) with messages recounted, their totals "
              f"replaced{removed} ({span}).")
        if r.not_ended:
            print(f"  Not ended yet in {r.zone}, left to the roll-up: {', '.join(d.isoformat() for d in r.not_ended)}.")


def _print_routes(table: RoutingTable, heading: str) -> None:
    print(f"{heading} (the first rule that matches a number wins; providers are tried in order)")
    print(f"  {'#':>3} {'MATCH':<16} {'PROVIDERS':<40} SENDER")
    for n, rule in enumerate(table.rules, 1):
        print(f"  {n:>3} {rule.match:<16} {', '.join(rule.providers):<40} {rule.sender or '-'}")


def _routes_file(path: str) -> str:
    """The text of --file (`-`: standard input), read no further than a routing table can be."""
    limit = 4 * MAX_TEXT_CHARS  # UTF-8 spends at most 4 bytes a character

    def refused(reason: str) -> ValidationFailed:
        return ValidationFailed([FieldError("--file", "InvalidValue", f"--file: {reason}")])

    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as file:
                data = file.read(limit + 1)
    except OSError as exc:
        raise refused(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise refused(f"more than {limit} bytes: a routing table is at most {MAX_TEXT_CHARS} characters")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise refused(f"not UTF-8 text: {path}") from None


async def _routes(adapters: Adapters, args: argparse.Namespace, text: str | None) -> None:
    """Through the same use case as /api/routes: the licensee's own table, or (without --licensee) the default."""
    licensees = adapters.gateway().use.licensees
    if args.action == "show":
        own = await licensees.routes(args.licensee, cached=False) if args.licensee else None
        table = own or licensees.default_routes
        if args.json:
            print(table_text(table))
        elif own is not None:
            _print_routes(own, f"Licensee {args.licensee}: its own routing table")
        else:
            whose = f"Licensee {args.licensee} has no routing table of its own: the deployment's default applies" if args.licensee \
                else "The deployment's default routing table (SMS_ROUTES)"
            _print_routes(table, whose)
        return
    if text is None:
        await licensees.set_routes(args.licensee, None)
        print(f"Cleared licensee {args.licensee}'s routing table: the deployment's default applies.")
        _print_routes(licensees.default_routes, "The deployment's default routing table")
    else:
        table = await licensees.set_routes(args.licensee, parse_table(text, licensees.provider_names))
        _print_routes(table, f"Licensee {args.licensee}: its own routing table")
        print("Saved.", end=" ")
    print(f"Every worker uses it within {CACHE_SECONDS:g} s.")


def _add_routes_commands(commands: argparse._SubParsersAction) -> None:
    routes = commands.add_parser("routes", help="a licensee's own routing table (which providers send to which numbers), "
                                                "as /api/routes manages it")
    routes = routes.add_subparsers(dest="action", required=True)
    show = routes.add_parser("show", help="the licensee's own table or, marked as such, the deployment's default")
    show.add_argument("--licensee", type=_guid, help="the licensee (default: show the deployment's default table)")
    show.add_argument("--json", action="store_true", help="print the table as JSON, as set --file reads it")
    setting = routes.add_parser("set", help="give the licensee its own table (from a JSON file), or clear it")
    setting.add_argument("--licensee", required=True, type=_guid)
    source = setting.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help='the table: JSON rules such as [{"match": "AU", "providers": ["acs"], "sender": '
                                       '"+61400000000"}, {"match": "*", "providers": ["twilio"]}] (- reads standard input)')
    source.add_argument("--clear", action="store_true", help="no table of its own: the deployment's default applies")


async def _usage(adapters: Adapters, args: argparse.Namespace) -> None:
    usage = adapters.gateway().use.usage
    calendar = await usage.calendar(args.licensee)
    first, last = usage_range({k: v for k, v in (("from", args.from_), ("to", args.to)) if v}, calendar.today)
    print(f"Licensee {args.licensee}: its days in {calendar.days.zone} (today {calendar.today.isoformat()}); "
          "a day counted in another zone before it changed says which")
    print(f"{'DAY':<11} {'MESSAGES':>9} {'RECIPIENTS':>11} {'SEGMENTS':>9} {'ZONE':<20}  BY STATUS / BY PROVIDER")
    for u in await usage.days(calendar, first, last):
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(u.by_status.items()))
        providers = ", ".join(f"{k} {v}" for k, v in sorted(u.by_provider.items()))
        print(f"{u.day.isoformat():<11} {u.messages:>9} {u.recipients:>11} {u.segments:>9} {u.time_zone:<20}  {statuses} / {providers}")


def _print_endpoints(endpoints: list[WebhookEndpoint]) -> None:
    print(f"{'ENDPOINT ID':<33} {'CREATED':<26} {'STATUS':<9} {'EVENTS':<40} URL")
    for e in endpoints:
        status = "enabled" if e.disabled_at is None else "disabled"
        print(f"{e.endpoint_id:<33} {e.created_at.isoformat(timespec='seconds'):<26} {status:<9} "
              f"{','.join(e.event_types) or 'all':<40} {e.url}")
        if e.disabled_at is not None:
            print(f"{'':<33} disabled at {e.disabled_at.isoformat(timespec='seconds')}: {e.disabled_reason or 'no reason recorded'}")
        if e.previous_secret is not None and e.previous_secret.expires_at is not None:
            print(f"{'':<33} the previous secret signs too until {e.previous_secret.expires_at.isoformat(timespec='seconds')}")


def _print_deliveries(records: list[DeliveryRecord]) -> None:
    print(f"{'AT':<19} {'EVENT TYPE':<20} {'ATTEMPT':>7} {'OUTCOME':<10} {'STATUS':>6} {'MS':>6}  EVENT ID / ERROR")
    for r in records:
        status = str(r.status) if r.status is not None else "-"
        what = r.event_id + (" (replay)" if r.replay else "") + (f"  {r.error}" if r.error else "")
        print(f"{r.at:%Y-%m-%d %H:%M:%S} {r.event_type:<20} {r.attempt:>7} {r.outcome:<10} {status:>6} {r.latency_ms:>6}  {what}")


async def _deliveries(delivery: WebhookDelivery, endpoint: WebhookEndpoint, take: int) -> None:
    records: list[DeliveryRecord] = []
    token = None
    while True:  # a take the use case refuses (0, -1) is refused on the first page, naming it
        page, token = await delivery.attempts(endpoint, min(MAX_LOG_TAKE, take - len(records)), token)
        records += page
        if token is None or len(records) >= take:
            break
    _print_deliveries(records)
    if not records:
        print(f"No deliveries to webhook endpoint {endpoint.endpoint_id} yet.")


async def _replay(delivery: WebhookDelivery, endpoint: WebhookEndpoint, args: argparse.Namespace) -> None:
    """As POST /api/webhooks/{endpointId}/replay reads its body; a range goes on until all of it is queued."""
    replay = replay_request(WebhookReplayRequest(event_id=args.event, from_=args.from_, to=args.to))
    if replay.event_id is not None:
        event = await delivery.replay_event(endpoint, replay.event_id)
        print(f"Queued event {event.id} ({event.type}) for webhook endpoint {endpoint.endpoint_id}.")
        return
    queued, token = await delivery.replay_range(endpoint, replay.start, replay.end)
    while token is not None:
        more, token = await delivery.replay_range(endpoint, replay.start, replay.end, token)
        queued += more
    print(f"Queued {queued} batch(es) of events written from {replay.start.isoformat()} to {replay.end.isoformat()} "
          f"for webhook endpoint {endpoint.endpoint_id}.")


async def _webhooks(adapters: Adapters, args: argparse.Namespace) -> None:
    """Through the same use cases as /api/webhooks, wired by adapters.gateway() as the app wires them."""
    use = adapters.gateway().use
    webhooks = use.webhooks
    if args.action in ("deliveries", "replay"):
        endpoint = await webhooks.get(args.licensee, args.endpoint_id)
        if args.action == "deliveries":
            await _deliveries(use.delivery, endpoint, args.take)
        else:
            await _replay(use.delivery, endpoint, args)
        return
    if args.action == "list":
        _print_endpoints(await webhooks.list(args.licensee))
        return
    if args.action == "add":
        events = [e.strip() for e in args.events.split(",") if e.strip()] if args.events else None
        endpoint = await webhooks.add(args.licensee, args.url, events)
        done = f"Added webhook endpoint {endpoint.endpoint_id} for licensee {args.licensee}."
    elif args.action == "rotate-secret":
        endpoint = await webhooks.rotate_secret(args.licensee, args.endpoint_id)
        ending = endpoint.previous_secret.expires_at.isoformat(timespec="seconds") if endpoint.previous_secret else "now"
        done = f"Endpoint {endpoint.endpoint_id} has a new secret; the previous one stops signing at {ending}."
    elif args.action == "remove":
        await webhooks.remove(args.licensee, args.endpoint_id)
        print(f"Removed webhook endpoint {args.endpoint_id.lower()}")
        return
    else:
        endpoint = await webhooks.enable(args.licensee, args.endpoint_id)
        print(f"Enabled webhook endpoint {endpoint.endpoint_id}")
        return
    _print_endpoints([endpoint])
    print(f"{done} Store its signing secret now: it cannot be shown again.")
    print(endpoint.secret.value)


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
    create.add_argument("--role", choices=KEY_ROLES, default=KEY_ROLE_LICENSEE,
                        help="licensee: its own licensee's data (default); admin: every licensee's data and keys")
    create.add_argument("--read-only", action="store_true", help="reads only: every route that changes something answers 403")
    rotate = keys.add_parser("rotate", help="a new key replacing one of the licensee's; the replaced key stops working "
                                            "after --grace-hours")
    rotate.add_argument("--licensee", required=True, type=_guid)
    rotate.add_argument("--key-id", help="the key to replace, by its key id (or the whole key); needed when the licensee has two")
    rotate.add_argument("--grace-hours", type=_hours, default=24.0, help="how long the replaced key keeps working (default 24)")
    rotate.add_argument("--name", help="a label to recognise the new key by (default: the replaced key's)")
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
        command.add_argument("--url", default=LOCAL_GATEWAY, help=f"the gateway (default {LOCAL_GATEWAY}, make run's)")
    messages = commands.add_parser("messages", help="a licensee's messages (the ledger)").add_subparsers(dest="action", required=True)
    listed = messages.add_parser("list", help="newest first, with GET /api/sms's filters")
    listed.add_argument("--licensee", required=True, type=_guid)
    listed.add_argument("--from", dest="from_", help="created from: a day (UTC) or an instant with its offset")
    listed.add_argument("--to", help="created before: a day (taken whole) or an instant with its offset")
    listed.add_argument("--status", help="the message's status, or any recipient's")
    listed.add_argument("--phone", help="a recipient's number, in any form a send accepts")
    for option in ("--contact-id", "--linked-object-id", "--suite-id"):
        listed.add_argument(option)
    listed.add_argument("--reference", help="SMS-XXXXXXXX")
    listed.add_argument("--take", type=int, default=50, help="how many to show at most (default 50)")
    cancelled = messages.add_parser("cancel", help="cancel what of a message has not gone yet (as DELETE /api/sms/{commId})")
    cancelled.add_argument("--licensee", required=True, type=_guid)
    cancelled.add_argument("comm_id", type=_comm_id, help="the commId a send answered with")
    people = commands.add_parser("licensees", help="a licensee's own settings: quiet hours and time zone")
    people = people.add_subparsers(dest="action", required=True)
    people.add_parser("show", help="the licensee's settings").add_argument("--licensee", required=True, type=_guid)
    setting = people.add_parser("set", help="change the licensee's settings; what is not given is kept")
    setting.add_argument("--licensee", required=True, type=_guid)
    quiet = setting.add_mutually_exclusive_group()
    quiet.add_argument("--quiet-hours", help="a window such as 21:00-08:00 that messages wait out, in each recipient's "
                                             "local time (urgent messages go anyway)")
    quiet.add_argument("--no-quiet-hours", action="store_true", help="no quiet hours")
    setting.add_argument("--time-zone", help="the licensee's own zone (an IANA name such as Australia/Sydney): for numbers "
                                             "whose zone is not known or spans several (default UTC)")
    optouts = commands.add_parser("optouts", help="the licensees' opt-out index (GET /api/optouts)")
    optouts.add_subparsers(dest="action", required=True).add_parser(
        "reindex", help="write to the index what dispatch's opt-outs hold and it lacks or holds older: the repair after a "
                        "change was written half way (startup does this once)")
    usage = commands.add_parser("usage", help="what a licensee sent per day (its zone's), as GET /api/usage answers; "
                                              "`usage rebuild` counts days again")
    usage.add_argument("--licensee", metavar="GUID", type=_guid, help="the licensee (required)")
    usage.add_argument("--from", dest="from_", metavar="DAY", help="the first day, the licensee's (default: 29 days before --to)")
    usage.add_argument("--to", metavar="DAY", help="the last day (default: the licensee's today)")
    rebuild = usage.add_subparsers(dest="action").add_parser(
        "rebuild", help="count days again from the ledger, each licensee's in its zone of now, and replace their totals "
                        "(days the roll-up missed, or counted in another zone or with old figures)")
    # Names of their own: argparse sets a subcommand's values, its defaults too, over the command's.
    rebuild.add_argument("--from", dest="rebuild_from", metavar="DAY", required=True, type=_day, help="the first day (YYYY-MM-DD)")
    rebuild.add_argument("--to", dest="rebuild_to", metavar="DAY", required=True, type=_day,
                         help=f"the last day, included (at most {MAX_REBUILD_DAYS} days from --from)")
    rebuild.add_argument("--licensee", dest="rebuild_licensee", metavar="GUID", type=_guid,
                         help="this licensee only (default: every licensee with messages in the range)")
    hooks = commands.add_parser("webhooks", help="a licensee's webhook endpoints, as /api/webhooks manages them")
    hooks = hooks.add_subparsers(dest="action", required=True)
    hook_add = hooks.add_parser("add", help="add an endpoint; its signing secret is printed once, alone on the last line")
    hook_add.add_argument("--licensee", required=True, type=_guid)
    hook_add.add_argument("--url", required=True, help="where events are posted: an https URL")
    hook_add.add_argument("--events", help=f"comma-separated event types (default: every one): {', '.join(EVENT_TYPES)}")
    hooks.add_parser("list", help="the licensee's endpoints (never their secrets)").add_argument("--licensee", required=True, type=_guid)
    for action, text in (("rotate-secret", "a new signing secret, printed once; the previous one keeps signing for "
                                           "SMS_WEBHOOK_SECRET_GRACE_HOURS"),
                         ("remove", "remove an endpoint"), ("enable", "send to a disabled endpoint again")):
        hook = hooks.add_parser(action, help=text)
        hook.add_argument("--licensee", required=True, type=_guid)
        hook.add_argument("endpoint_id", help="the endpoint's id, as add and list show it")
    log = hooks.add_parser("deliveries", help="an endpoint's delivery log, newest first: every attempt to send it an event")
    log.add_argument("--licensee", required=True, type=_guid)
    log.add_argument("endpoint_id", help="the endpoint's id, as add and list show it")
    log.add_argument("--take", type=int, default=50, help="how many attempts to show at most (default 50)")
    replay = hooks.add_parser("replay", help="send events to an endpoint again: one (--event), or every one written from "
                                             "--from to --to")
    replay.add_argument("--licensee", required=True, type=_guid)
    replay.add_argument("endpoint_id", help="the endpoint's id, as add and list show it")
    replay.add_argument("--event", help="the event's id (webhook-id), as the receiver or the delivery log saw it")
    replay.add_argument("--from", dest="from_", help="written from: a day (UTC) or an instant with its offset")
    replay.add_argument("--to", help="written before: a day (taken whole) or an instant with its offset")
    _add_routes_commands(commands)
    add_guard_commands(commands, _guid)
    load_local_settings()  # before the arguments: a number is read in SMS_DEFAULT_REGION
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "messages":
            work = _cancel if args.action == "cancel" else _messages
            asyncio.run(with_adapters(lambda adapters: work(adapters, args)))
        elif args.command == "licensees":
            if args.action == "set" and args.quiet_hours is None and not args.no_quiet_hours and args.time_zone is None:
                print("error: give --quiet-hours, --no-quiet-hours or --time-zone", file=sys.stderr)
                return 2
            asyncio.run(with_adapters(lambda adapters: _licensees(adapters, args)))
        elif args.command == "routes":
            text = _routes_file(args.file) if args.action == "set" and args.file is not None else None  # before storage
            asyncio.run(with_adapters(lambda adapters: _routes(adapters, args, text)))
        elif args.command == "guard":
            return asyncio.run(with_adapters(lambda adapters: guard(adapters, args)))
        elif args.command == "usage":
            if args.action is None and args.licensee is None:
                usage.error("the following arguments are required: --licensee (or: usage rebuild)")
            if args.action == "rebuild" and (args.from_ or args.to or args.licensee):
                usage.error("give rebuild's --from, --to and --licensee after `rebuild`")
            work = _rebuild if args.action == "rebuild" else _usage
            asyncio.run(with_adapters(lambda adapters: work(adapters, args)))
        elif args.command == "webhooks":
            asyncio.run(with_adapters(lambda adapters: _webhooks(adapters, args)))
        elif args.command == "optouts":
            written = asyncio.run(with_adapters(
                lambda adapters: OptOuts(adapters.opt_outs, index=adapters.opt_out_index).backfill(again=True)))
            print(f"Wrote {written} opt-out state(s) to the index (SmsOptOutIndex) from SmsOptOutsByNumber")
        elif args.action == "create":
            expires = utcnow() + timedelta(days=args.expires_in_days) if args.expires_in_days else None
            key = asyncio.run(create_key(args.licensee, args.name, expires, args.role, args.read_only))
            kind = f"{'read-only ' if args.read_only else ''}{args.role}"
            print(f"Created an API key ({kind}) for licensee {args.licensee}. Store it now: it cannot be shown again.")
            print(key)
        elif args.action == "rotate":
            key_id = _key_id(args.key_id) if args.key_id else None  # never echo a secret back, even when given the whole key
            rotation = asyncio.run(with_adapters(lambda adapters: rotate_key(
                adapters.keys, args.licensee, timedelta(hours=args.grace_hours), args.name, key_id)))
            print(rotation_summary(args.licensee, rotation))
            print(rotation.key)
        elif args.action == "list":
            _print_keys(asyncio.run(with_adapters(lambda adapters: adapters.keys.list(args.licensee))))
        else:
            key_id = _key_id(args.key_id)  # never echo a secret back, even when given the whole key
            asyncio.run(with_adapters(lambda adapters: revoke_key(adapters.keys, key_id)))  # NotFound: exit 1
            print(f"Revoked {key_id}")
    except NotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyNotChosen as exc:
        print(f"error: {exc} with --key-id", file=sys.stderr)
        return 2
    except (ConfigError, StorageUnavailable, KeyLimitReached, LimitReached, Conflict) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationFailed as exc:
        print("error: " + "; ".join(e.message for e in exc.field_errors), file=sys.stderr)
        return 2
    return 0
