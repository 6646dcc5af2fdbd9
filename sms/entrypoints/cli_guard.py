"""`python -m sms guard show|set`: the operator's hand on a licensee's guard (sms/domain/guard.py). Through
the same use case as /api/guard, but as the operator: a change may loosen the guard (a licensee's key may
only tighten it)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from ..bootstrap import Adapters
from ..domain.errors import FieldError, ValidationFailed
from ..domain.guard import PREFIX, Action, Guard, guard_data
from ..usecases.licensees import CACHE_SECONDS

_CAPS = (("daily_segments", "dailySegments"), ("monthly_segments", "monthlySegments"), ("daily_cost", "dailyCost"),
         ("monthly_cost", "monthlyCost"))


def add_guard_commands(commands: argparse._SubParsersAction, licensee: Callable[[str], str]) -> None:
    guard = commands.add_parser("guard", help="a licensee's guard: which countries and number types it may text, pumping "
                                              "protection, its safe list and its spend caps, as /api/guard shows it")
    actions = guard.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="the licensee's guard (its own, or the deployment's default, saying which)")
    show.add_argument("--licensee", required=True, type=licensee)
    show.add_argument("--json", action="store_true", help="print the guard as JSON, as set --json reads it")
    setting = actions.add_parser("set", help="change the licensee's guard: what is given changes, the rest stays")
    setting.add_argument("--licensee", required=True, type=licensee)
    for action in Action:
        setting.add_argument(f"--{action.value}", metavar="COUNTRY", nargs="+", default=[],
                             help=f"{action.value} these countries (ISO 3166 codes: AU GB)")
        setting.add_argument(f"--{action.value}-type", metavar="TYPE", nargs="+", default=[],
                             help=f"{action.value} these number types (premium_rate shared_cost voip ...)")
    setting.add_argument("--unlist", metavar="COUNTRY", nargs="+", default=[], help="these countries go back to --other's action")
    setting.add_argument("--other", choices=[a.value for a in Action], help="every country not listed")
    setting.add_argument("--pumping", choices=["enforce", "monitor", "off"], help="pumping protection")
    setting.add_argument("--safe", metavar="NUMBER_OR_PREFIX", nargs="+", help="the safe list (replaces it): +61491570110 +614")
    setting.add_argument("--no-safe", action="store_true", help="empty the safe list")
    for name, wire in _CAPS:
        what = "segments (a whole number)" if name.endswith("segments") else "estimated cost (50.00)"
        setting.add_argument(f"--{name.replace('_', '-')}", metavar="N|none", help=f"the {wire} cap in {what}; none: no cap")
    setting.add_argument("--json", dest="json_change", metavar="JSON", help="a change as PUT /api/guard takes it")
    setting.add_argument("--clear", action="store_true", help="no guard of its own: the deployment's default applies")
    lift = actions.add_parser("lift", help="lift a prefix block pumping protection made (every worker within 5 s)")
    lift.add_argument("--licensee", required=True, type=licensee)
    lift.add_argument("--prefix", required=True, help="the blocked prefix, as guard show lists it (+4479461)")


def change_of(args: argparse.Namespace) -> dict[str, Any]:
    """The change the arguments ask for, as PUT /api/guard takes it (sms.domain.guard.parse_guard checks it)."""
    try:
        change: dict[str, Any] = json.loads(args.json_change) if args.json_change else {}
    except ValueError as exc:
        raise ValidationFailed([FieldError("--json", "InvalidValue", f"--json is not JSON: {exc}")]) from None
    if not isinstance(change, dict):
        change = {"": change}  # refused by the guard's rules, naming it
    countries = {**{c: a.value for a in Action for c in getattr(args, a.value)}, **{c: None for c in args.unlist}}
    types = {t: a.value for a in Action for t in getattr(args, f"{a.value}_type")}
    if countries:
        change["countries"] = _merged(change.get("countries"), countries)
    if types:
        change["numberTypes"] = _merged(change.get("numberTypes"), types)
    if args.other:
        change["otherCountries"] = args.other
    if args.pumping:
        change["pumping"] = args.pumping
    if args.safe is not None or args.no_safe:
        change["safeList"] = [] if args.no_safe else args.safe
    # As text, as JSV gives a cap: the guard's rules read the figure, naming the cap when it is none.
    caps = {wire: None if value.strip().lower() == "none" else value.strip()
            for name, wire in _CAPS if (value := getattr(args, name)) is not None}
    if caps:
        change["caps"] = _merged(change.get("caps"), caps)
    return change


def _merged(given: Any, flags: dict[str, Any]) -> Any:
    """What --json gave for a field, with the flags' entries over it; what is no object stays as given, for the
    guard's rules to refuse naming the field."""
    if given is None:
        return flags
    return {**given, **flags} if isinstance(given, dict) else given


async def guard(adapters: Adapters, args: argparse.Namespace) -> int:
    use = adapters.gateway().use
    licensees = use.licensees
    if args.action == "lift":
        # Checked before storage: Azure refuses / \ # ? and control characters in a key (Understanding the Table service
        # data model, "Characters disallowed in key fields", learn.microsoft.com/rest/api/storageservices/).
        if not PREFIX.fullmatch(args.prefix.strip()):
            raise ValidationFailed([FieldError("--prefix", "InvalidValue", f"--prefix {args.prefix.strip()[:32]!r} is not a "
                                                                           "prefix: + and digits, as guard show lists it")])
        if not await use.pumping.lift(args.licensee, args.prefix.strip()):
            print(f"error: licensee {args.licensee} has no block of prefix {args.prefix.strip()}", file=sys.stderr)
            return 1
        print(f"Lifted the block of {args.prefix.strip()}: every worker obeys it no more within 5 s.")
        return 0
    if args.action == "set":
        changed = await licensees.set_guard(args.licensee, None if args.clear else change_of(args), may_loosen=True, clear=args.clear)
        print(f"Saved. Every worker uses it within {CACHE_SECONDS:g} s.")
        _print(args.licensee, changed, own=not args.clear, as_json=False)
        return 0
    stored, own = await licensees.stored_guard(args.licensee)
    _print(args.licensee, stored, own, args.json)
    if not args.json:
        for use_of in await use.spend.spent(args.licensee, stored.caps):
            limit = "no cap" if use_of.limit is None else f"cap {use_of.cap.amount(use_of.limit, use.screening.currency)}"
            print(f"  {use_of.cap.wire:<16} {use_of.period.name}: {use_of.cap.amount(use_of.used, use.screening.currency)} used, "
                  f"{limit}; resets {use_of.period.resets_at.isoformat(timespec='minutes')}")
        for block in await use.pumping.blocks(args.licensee):
            print(f"  {block.reason}")
    return 0


def _print(licensee: str, guard: Guard, own: bool, as_json: bool) -> None:
    data = guard_data(guard)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    print(f"Licensee {licensee}: " + ("its own guard" if own else "no guard of its own: the deployment's default applies"))
    listed = ", ".join(f"{c} {a}" for c, a in data["countries"].items()) or "none"
    print(f"  countries      {listed}; every other country: {data['otherCountries']}")
    print(f"  number types   {', '.join(f'{t} {a}' for t, a in data['numberTypes'].items()) or 'every type allowed'}")
    print(f"  pumping        {data['pumping']}; safe list: {', '.join(data['safeList']) or 'empty'}")
    caps = ", ".join(f"{wire} {data['caps'][wire]}" for _, wire in _CAPS if data["caps"][wire] is not None)
    print(f"  caps           {caps or 'none'}")
