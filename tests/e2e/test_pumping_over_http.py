"""Pumping protection over the dev host (issue 27), with simulator numbers and short settings: a burst to
one prefix (+1202555, SMS_PUMPING_PREFIX_DIGITS=4) whose receipts all say undelivered (a number ending
in 1) blocks the prefix; the licensee's receiver gets guard.prefix_blocked; a later message's recipient
in that prefix ends `blocked` while one in another prefix (+1312555) goes; the block ends on time; a
safe-listed number goes through it; a guard in `monitor` is told and blocks nothing."""
import asyncio
import uuid
from dataclasses import replace
from datetime import datetime

import pytest
from azure.data.tables.aio import TableServiceClient

from sms.domain.guard import PumpingMode, default_guard, guard_text
from sms.storage import LicenseeSettings
from sms.storage.licensees import TableLicenseeSettingsStore
from tests.e2e.conftest import running_devhost
from tests.webhook_receiver import ReceiverThread, WebhookReceiver

BURST = ["+12025550101", "+12025550111", "+12025550121", "+12025550131"]  # undelivered, each
NEIGHBOUR = "+12025550100"  # delivered, in the burst's prefix
OTHER_IN_PREFIX = "+12025550106"  # delivered, in the burst's prefix
ELSEWHERE = "+13125550100"  # delivered, another prefix
SETTINGS = {"SMS_GUARD_HOME_COUNTRIES": "AU,US", "SMS_WEBHOOKS_ALLOW_PRIVATE": "true", "SMS_PUMPING_MIN_SENDS": "4",
            "SMS_PUMPING_WINDOW_SECONDS": "120", "SMS_PUMPING_CONFIRM_WAIT_SECONDS": "60", "SMS_PUMPING_BLOCK_SECONDS": "8",
            "SMS_PUMPING_PREFIX_DIGITS": "4"}


@pytest.fixture(scope="module")
def receivers():
    with ReceiverThread() as thread:
        yield thread


async def until(condition, timeout: float, why=lambda: ""):
    try:
        async with asyncio.timeout(timeout):
            while not (found := await condition()):
                await asyncio.sleep(0.3)
            return found
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {why()}") from None


class Licensee:
    def __init__(self, host, receivers, connection_string: str, pumping: PumpingMode = PumpingMode.ENFORCE,
                 safe_list: tuple[str, ...] = ()):
        self.host, self.receivers, self.connection_string = host, receivers, connection_string
        self.id, self.pumping, self.safe_list = uuid.uuid4().hex, pumping, safe_list

    async def start(self) -> "Licensee":
        self.key = await asyncio.to_thread(self.host.create_key, self.id)
        guard = replace(default_guard(("AU", "US")), pumping=self.pumping, safe_list=self.safe_list)
        async with TableServiceClient.from_connection_string(self.connection_string) as service:
            store = TableLicenseeSettingsStore.from_service(service)
            await store.create_table()
            await store.put(LicenseeSettings(self.id, guard=guard_text(guard)))  # before its first send reads it
        self.receiver = self.receivers.start(WebhookReceiver(secret=""))
        status, endpoint = await self.call("POST", "/api/webhooks", {"url": self.receiver.url, "eventTypes": ["guard.prefix_blocked"]})
        assert status == 200, endpoint
        self.receiver.secret = endpoint["secret"]
        return self

    async def call(self, method, path, body=None):
        return await asyncio.to_thread(self.host.request, method, path, body, self.key)

    async def send(self, *numbers) -> dict[str, dict]:
        """Sends one message to `numbers`; each recipient's state once none is still waiting or sending."""
        status, reply = await self.call("POST", "/api/sms/send", {"smsModel": {"to": [{"phoneNumber": n} for n in numbers],
                                                                              "messageBody": "Pumping run"}})
        assert status == 200, reply

        async def settled():
            _, state = await self.call("GET", f"/api/sms/{reply['commId']}")
            recipients = state["recipients"]
            return {r["phoneNumber"]: r for r in recipients} if all(
                r["status"] not in ("queued", "sending") for r in recipients) else None

        return await until(settled, 60, lambda: self.host.output[-10:])

    async def burst(self) -> dict:
        """The burst, and the guard.prefix_blocked event it makes."""
        assert {r["status"] for r in (await self.send(*BURST)).values()} == {"sent"}

        async def told():
            return [d.payload for d in self.receiver.verified if d.payload["type"] == "guard.prefix_blocked"]

        [event] = await until(told, 60, lambda: self.host.output[-10:])
        return event["data"]


async def test_a_collapsing_burst_blocks_its_prefix_until_it_ends_and_the_licensee_is_told(own_emulator, tmp_path, receivers):
    with running_devhost(own_emulator.connection_string, tmp_path / "outbox.jsonl", **SETTINGS) as host:
        connection = host.env["AzureWebJobsStorage"]
        enforcing = await Licensee(host, receivers, connection).start()
        safe = await Licensee(host, receivers, connection, safe_list=(NEIGHBOUR,)).start()
        watching = await Licensee(host, receivers, connection, pumping=PumpingMode.MONITOR).start()

        block = await enforcing.burst()
        assert (block["prefix"], block["mode"], block["sends"], block["confirmed"], block["window"]) == ("+1202555", "enforce", 4, 0, 120)
        after = await enforcing.send(NEIGHBOUR, ELSEWHERE)
        assert after[NEIGHBOUR]["status"] == "blocked"
        assert after[NEIGHBOUR]["error"] == (f"prefix +1202555 is blocked by pumping protection until {block['until']} "
                                             "(its deliveries collapsed: 0 of 4 confirmed)")
        assert after[ELSEWHERE]["status"] in ("sent", "delivered")  # another prefix: untouched

        # A safe-listed number goes through its licensee's block; its neighbours do not.
        assert (await safe.burst())["mode"] == "enforce"
        through = await safe.send(NEIGHBOUR, OTHER_IN_PREFIX)
        assert (through[NEIGHBOUR]["status"], through[OTHER_IN_PREFIX]["status"]) in (("sent", "blocked"), ("delivered", "blocked"))

        # Monitor: told, nothing blocked.
        assert (await watching.burst())["mode"] == "monitor"
        assert (await watching.send(NEIGHBOUR))[NEIGHBOUR]["status"] in ("sent", "delivered")

        # The block ends on time: the prefix is texted again.
        ends = datetime.fromisoformat(block["until"].replace("Z", "+00:00"))
        await asyncio.sleep(max(0.0, (ends - datetime.now(ends.tzinfo)).total_seconds()) + 1)
        assert (await enforcing.send(NEIGHBOUR))[NEIGHBOUR]["status"] in ("sent", "delivered")
