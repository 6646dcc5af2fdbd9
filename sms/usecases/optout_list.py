"""A licensee's opt-outs as it sees them (GET /api/optouts, GET /api/optouts/history): its own list, searched by
number, and each number's changes. sms.usecases.optouts makes the changes; this only reads.

What a licensee sees of a number: its own scope (STOPs that answered its messages, and its manual changes), and the
scopes every licensee shares that block the number now or did: a STOP we could not place (every licensee), and a
STOP sent to a sender number (every licensee texting from it: the gateway cannot tell which licensees send from
which number, so each sees them all). Other licensees' own scopes are never shown.
"""
from __future__ import annotations

from ..domain.errors import FieldError, ValidationFailed
from ..storage import EVERY_LICENSEE, OptOutChange, OptOutIndex, OptOutStore
from .paging import bind, unbind

DEFAULT_TAKE, MAX_TAKE = 50, 200


class OptOutList:
    def __init__(self, store: OptOutStore, index: OptOutIndex):
        self._store, self._index = store, index

    async def page(self, licensee_id: str, prefix: str, take: int | None = None,
                   token: str | None = None) -> tuple[list[OptOutChange], str | None]:
        """The licensee's own opt-outs (opted back in too: each number's latest change), by number, of the numbers
        starting with `prefix` (E.164's "+" and digits; "+" for all); a token goes on with this same search only."""
        take = DEFAULT_TAKE if take is None else take
        if not 1 <= take <= MAX_TAKE:
            raise ValidationFailed([FieldError("take", "InvalidValue", f"take: must be a whole number from 1 to {MAX_TAKE}")])
        query = ("optouts", prefix)
        states, token = await self._index.states(licensee_id, prefix, take, unbind(token, *query))
        return states, bind(token, *query)

    async def history(self, licensee_id: str, number: str) -> list[OptOutChange]:
        """Every change of the number's opt-out the licensee may see (its own scope, and the shared ones the number
        ever opted out of), newest first."""
        scopes = {licensee_id} | {row.scope for row in await self._store.rows_for(number) if row.scope.startswith(EVERY_LICENSEE)}
        changes = [change for scope in sorted(scopes) for change in await self._index.history(scope, number)]
        return sorted(changes, key=lambda c: (c.at, c.scope == licensee_id), reverse=True)  # at one instant, its own first

    async def others(self, number: str) -> list[OptOutChange]:
        """The shared scopes that block the number now (a STOP to a sender number, or every licensee's): no licensee's
        key lifts these."""
        return [row for row in await self._store.rows_for(number) if row.opted_out and row.scope.startswith(EVERY_LICENSEE)]

    async def state(self, licensee_id: str, number: str) -> OptOutChange | None:
        return await self._index.state(licensee_id, number)
