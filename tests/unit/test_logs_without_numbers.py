"""Log paths outside the HTTP layer that quote what a vendor or a provider said. Each quotes text that
can carry a full phone number (issue 12, item 12).

Found while hardening the gateway against hostile input: each failed until its log line was masked.
"""
import logging

import pytest

from sms.domain.model import Status
from sms.providers import SendOutcome
from tests.fakes import SAM, World
from tests.unit.test_no_server_errors import PLANTED, leaked


def logged(caplog) -> str:
    return "\n".join(f"{r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records)


async def test_a_providers_error_text_is_logged_with_its_numbers_masked(caplog):
    """Twilio's 21211, say: "The 'To' number +61 412 345 999 is not a valid phone number"."""
    caplog.set_level(logging.DEBUG)
    world = World()

    async def refuse(sms):
        return SendOutcome(error=f"The 'To' number {PLANTED} is not reachable now", transient=True)

    world.provider.send = refuse
    await world.send(SAM)
    assert "not reachable" in logged(caplog)
    assert not leaked(logged(caplog))


async def test_a_providers_exception_is_logged_with_its_numbers_masked(caplog):
    caplog.set_level(logging.DEBUG)
    world = World()

    async def explode(sms):
        raise RuntimeError(f"HTTP 400 error: Unable to create record: The 'To' number {PLANTED} is not valid")

    world.provider.send = explode
    await world.send(SAM)
    assert "RuntimeError" in logged(caplog)
    assert not leaked(logged(caplog))


@pytest.mark.parametrize("reference", [PLANTED, f"{'c' * 32}:{PLANTED}"])
async def test_a_receipt_with_a_reference_that_is_not_ours_is_logged_masked_and_short(caplog, reference):
    """The reference is a vendor's (an ACS tag, Twilio's ?ref=), so it can hold anything."""
    caplog.set_level(logging.DEBUG)
    world = World()
    assert await world.inbound.apply_receipt(reference + " " * 5000, Status.DELIVERED) is False
    assert caplog.records and not leaked(logged(caplog))
    assert max(len(r.getMessage()) for r in caplog.records) < 200
