"""The simulator provider over the real adapters (bootstrap.build, Azurite): its receipts are applied by
the receipt use case on real tables, racing the dispatch's own writes of the same rows (ETag-checked)."""
import pytest

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.model import SendJob, Status
from sms.domain.simulated import Behaviour, simulated
from sms.providers import ProviderSet
from sms.providers.simulator import SimulatorProvider
from tests.fakes import SmsOverCommands, command

LICENSEE = "d" * 32
# What each behaviour leaves a recipient as, where the dispatch as it stands decides it alone.
ENDS = {Behaviour.DELIVERED: Status.DELIVERED, Behaviour.UNDELIVERED: Status.UNDELIVERED, Behaviour.FAILED: Status.FAILED,
        Behaviour.NO_RECEIPT: Status.SENT}


@pytest.fixture
async def adapters(emulator):
    adapters = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    # No wait before a receipt: it races the dispatch recording the send, the hardest order for the rows.
    adapters.providers = ProviderSet([adapters.providers.first, SimulatorProvider(receipt_delay=0)])
    await adapters.ensure_storage()
    yield adapters
    await adapters.close()


async def test_a_hundred_simulator_numbers_end_as_their_behaviours_say(adapters):
    use = adapters.gateway().use  # which gives the simulator its receipts' way in (Inbound.apply_receipt)
    simulator = adapters.providers.get("simulator")
    sms = SmsOverCommands(use)
    numbers = [f"+6125550{line:04d}" for line in range(100)]  # ACMA's (02) 5550 xxxx: every last digit ten times
    response = await sms.accept(command(*numbers, body="Trying the simulator"), LICENSEE)
    await sms.dispatch(SendJob(response.comm_id, 0, 99))
    await simulator.wait_for_receipts()

    report = await sms.status(response.comm_id, LICENSEE)
    for r in report.recipients:
        behaviour = simulated(r.phone_number)
        if behaviour in ENDS:
            assert r.status is ENDS[behaviour], (r.phone_number, r.status, r.last_error)
        assert r.attempts == 1  # none tried twice
        if behaviour is Behaviour.UNDELIVERED:
            assert "HANDSET_UNREACHABLE" in r.last_error
            assert [e.status for e in r.events][-1] is Status.UNDELIVERED
    calendar = await use.usage.calendar(LICENSEE)
    [today] = await use.usage.days(calendar, calendar.today, calendar.today)
    billed = sum(r.status in (Status.SENT, Status.DELIVERED, Status.UNDELIVERED) for r in report.recipients)
    assert billed >= 70 and today.by_provider == {"simulator": billed}  # what it took, counted under its name
    assert today.by_status["delivered"] == 50 and today.by_status["undelivered"] == 10
