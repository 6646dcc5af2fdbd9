"""The licensee's guard applied to a message's recipients (issue 27; the rules are sms/domain/guard.py).

At accept (`screen`): each recipient is judged by the guard as it stands, priced (at the dearest provider
its route may fail over to, its country, the message's segments: the operator's price table) and blocked when the guard
blocks its destination, when its price is over the message's MaxPrice, or when a price is needed (a
MaxPrice, a cost cap) and the table has none for it. A blocked recipient is stored `blocked`, with the
reason; the rest of the message goes. What the others cost is the message's estimate.

At dispatch (`at_dispatch`): what is still waiting is judged again by the guard as it stands then (a
scheduled message's guard may have changed meanwhile): blocked, or flagged on its claim when monitored;
and blocked when its prefix is blocked by pumping protection (sms/usecases/pumping.py) and its number
is not on the guard's safe list.

Both read the guard through the licensee's cached settings (sms/usecases/licensees.py): no storage call
on a send but once per licensee per 30 s.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from ..domain import transitions
from ..domain.commands import Estimate
from ..domain.guard import Action, Guard, PumpingMode, kind_of, money_text
from ..domain.model import WAITING, Message, Recipient
from ..domain.prices import PriceTable
from ..domain.routing import RoutingTable, Rule
from ..domain.simulated import SIMULATOR, simulated
from ..providers import ProviderSet
from .licensees import Licensees
from .pumping import PumpingProtection

_SIMULATED = Rule("*", (SIMULATOR,))


class Routing:
    """Which rule of the licensee's routing table each recipient goes by."""

    def __init__(self, licensees: Licensees, providers: ProviderSet):
        self._licensees = licensees
        self._providers = providers
        # With the simulator on (SMS_SIMULATOR), the numbers reserved for fiction go to it whatever the table says.
        self._to_simulator = providers.get(SIMULATOR) is not None
        self._usable_rules: dict[Rule, Rule | None] = {}  # each rule with only the providers this deployment has

    async def routes_of(self, message: Message, recipients: Sequence[Recipient],
                        table: RoutingTable | None = None) -> dict[int, Rule | None]:
        """Each recipient's routing rule (None: no rule matches its number), from the licensee's table
        (`table`, when the caller has it already: its own, or the deployment's default)."""
        table = table or await self._licensees.routes_for(message.licensee_id)
        to_simulator = self._to_simulator
        return {r.seq: _SIMULATED if to_simulator and simulated(r.phone_number) else self._usable(table.route_for(r.phone_number))
                for r in recipients}

    def _usable(self, rule: Rule | None) -> Rule | None:
        """The rule with only the providers this deployment has (a licensee's stored table may name one
        since removed); None when it has none left: the recipient has no route."""
        if rule is None:
            return None
        usable = self._usable_rules.get(rule, rule)
        if usable is rule and rule not in self._usable_rules:
            names = tuple(name for name in rule.providers if self._providers.get(name) is not None)
            usable = None if not names else rule if names == rule.providers else Rule(rule.match, names, rule.sender)
            if len(self._usable_rules) < 10_000:  # bounded: licensees' own tables hold at most 200 rules each
                self._usable_rules[rule] = usable
        return usable


@dataclass(frozen=True)
class Line:
    """One recipient as the guard and the price table see it."""

    seq: int
    phone_number: str
    country: str | None
    number_type: str
    provider: str | None  # its route's first provider; None: no route
    cost: int | None  # its SMS (every segment) through the dearest provider of its route, in millionths; None: unknown
    action: Action  # the guard's word (block also for a price over MaxPrice or one unknown when needed)
    reason: str | None  # why it is blocked or monitored


@dataclass(frozen=True)
class Screened:
    message: Message
    recipients: list[Recipient]  # the blocked ones moved to `blocked`
    lines: list[Line]
    currency: str | None
    guard: Guard
    going: list[Line]  # the recipients that are to be sent: not blocked
    segments: int  # segments of every recipient that is to be sent
    cost: int | None  # of every recipient that is to be sent, routed, in millionths; None when one's price is unknown

    @classmethod
    def of(cls, message: Message, recipients: list[Recipient], lines: list[Line], currency: str | None, guard: Guard) -> "Screened":
        going = [line for line in lines if line.action is not Action.BLOCK]
        costs = [line.cost for line in going if line.provider is not None]
        cost = None if None in costs else sum(costs)  # type: ignore[arg-type]
        return cls(message, recipients, lines, currency, guard, going, message.segments * len(going), cost)

    @property
    def estimate(self) -> Estimate:
        """What the message costs: what a send answers (sms/usecases/accept.py), and POST /api/sms/estimate."""
        going = len(self.going)
        return Estimate(self.message.encoding, self.message.segments, going, len(self.lines) - going, self.cost, self.currency)


class Screening:
    def __init__(self, licensees: Licensees, routing: Routing, prices: PriceTable, pumping: PumpingProtection | None = None):
        self._licensees = licensees
        self.routing = routing
        self._prices = prices
        self.pumping = pumping

    @property
    def currency(self) -> str | None:
        return self._prices.currency

    async def screen(self, message: Message, recipients: Sequence[Recipient], max_price: int | None = None) -> Screened:
        """The recipients judged and priced, those refused moved to `blocked` (at the message's creation)."""
        guard, table = await self._licensees.guard_and_routes(message.licensee_id)  # one cached read of its settings
        routes = await self.routing.routes_of(message, recipients, table)
        needs_price = max_price is not None or guard.caps.daily_cost is not None or guard.caps.monthly_cost is not None
        lines, screened = [], []
        for r in recipients:
            line = self._line(guard, r, routes.get(r.seq), message.segments, max_price, needs_price)
            lines.append(line)
            blocked = line.action is Action.BLOCK and r.status in WAITING
            screened.append(transitions.blocked(r, line.reason or "", at=message.created_at) if blocked else r)
        return Screened.of(message, screened, lines, self._prices.currency, guard)

    def _line(self, guard: Guard, r: Recipient, rule: Rule | None, segments: int, max_price: int | None,
              needs_price: bool) -> Line:
        country, number_type = kind_of(r.phone_number)
        verdict = guard.judge(r.phone_number)
        provider = rule.providers[0] if rule is not None else None
        # Priced at the dearest provider its route may fail over to: a cap and a MaxPrice must hold whichever
        # provider takes it (and a licensee's key, which sets its own routes, cannot put a cheap one first).
        costs = {name: self._prices.cost(country, name, segments) for name in rule.providers} if rule is not None else {}
        unpriced = next((name for name, c in costs.items() if c is None), None)
        cost = None if unpriced is not None or not costs else max(c for c in costs.values() if c is not None)
        line = Line(r.seq, r.phone_number, country, number_type, provider, cost, verdict.action, verdict.reason)
        if verdict.action is Action.BLOCK or provider is None:
            return line
        if cost is None and needs_price:
            why = "its MaxPrice" if max_price is not None else "this licensee's cost cap"
            return replace(line, action=Action.BLOCK, reason=f"the price table has no price for {country or 'its country'} "
                                                             f"through {unpriced}, and {why} needs one")
        if max_price is not None and cost is not None and cost > max_price:
            currency = f" {self._prices.currency}" if self._prices.currency else ""
            return replace(line, action=Action.BLOCK, reason=f"it costs {money_text(cost)}{currency}, over the message's "
                                                             f"MaxPrice of {money_text(max_price)}{currency}")
        return line

    async def at_dispatch(self, message: Message, recipients: Sequence[Recipient]) -> tuple[dict[int, str], dict[int, str]]:
        """Of these waiting recipients, those the guard now blocks and those it monitors: seq -> why, each."""
        if not recipients:
            return {}, {}
        guard = await self._licensees.guard(message.licensee_id)
        # Prefixes pumping protection blocked (enforce only: monitor reports and blocks nothing); never a safe-listed number.
        pumped = await self.pumping.blocking(message.licensee_id, [r.phone_number for r in recipients if not guard.safe(r.phone_number)]) \
            if self.pumping is not None and guard.pumping is PumpingMode.ENFORCE else {}
        blocked, flagged = {}, {}
        for r in recipients:
            verdict = guard.judge(r.phone_number)
            if verdict.action is Action.BLOCK:
                blocked[r.seq] = verdict.reason or ""
            elif r.phone_number in pumped:
                blocked[r.seq] = pumped[r.phone_number].reason
            elif verdict.action is Action.MONITOR:
                flagged[r.seq] = verdict.reason or ""
        return blocked, flagged
