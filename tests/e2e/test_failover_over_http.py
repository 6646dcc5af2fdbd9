"""Two providers over the dev host (issue 26): the first refuses every call at the door (503), so every
recipient of a 500-message run goes out through the second, each once; the first's breaker opens, and
closes again once it recovers. Both providers are local fakes of Twilio's API, driven by Twilio's SDK."""
import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import running_devhost
from tests.fake_vendors import FakeTwilio

LICENSEE = "3e" * 16
MESSAGES = 500


def twilio_settings(name: str, fake: FakeTwilio) -> dict[str, str]:
    prefix = f"SMS_PROVIDER_{name.upper().replace('-', '_')}_"
    return {prefix + "ACCOUNT_SID": FakeTwilio.ACCOUNT_SID, prefix + "AUTH_TOKEN": FakeTwilio.AUTH_TOKEN,
            prefix + "FROM_NUMBER": "+61400000000", prefix + "API_BASE_URL": fake.base_url}


def sends_to(fake: FakeTwilio) -> list[str]:
    return [r["form"]["To"] for r in fake.requests if r["method"] == "POST"]


async def until(condition, timeout: float, why=lambda: "") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {why()}") from None


async def test_every_recipient_goes_out_once_through_the_healthy_provider_and_the_breaker_opens_then_closes(
        own_emulator, tmp_path):
    down, up = await FakeTwilio().start(), await FakeTwilio().start()
    down.down = FakeTwilio.error(503, 20503, "Service Unavailable")
    env = {"SMS_PROVIDERS": "twilio-a,twilio-b", **twilio_settings("twilio-a", down), **twilio_settings("twilio-b", up),
           "SMS_BREAKER_COOL_OFF_SECONDS": "2", "SMS_SIMULATOR": "off"}
    try:
        with running_devhost(own_emulator.connection_string, tmp_path / "outbox.jsonl", **env) as host:
            key = await asyncio.to_thread(host.create_key, LICENSEE)
            numbers = [f"+61412{i:06d}" for i in range(MESSAGES)]

            def send(number: str) -> int:
                status, _ = host.request("POST", "/api/sms/send", {"smsModel": {"to": [{"phoneNumber": number}],
                                                                               "messageBody": "Failover run"}}, key=key)
                return status

            with ThreadPoolExecutor(8) as pool:
                statuses = await asyncio.to_thread(lambda: list(pool.map(send, numbers)))
            assert statuses == [200] * MESSAGES
            await until(lambda: len(sends_to(up)) >= MESSAGES, timeout=180,
                        why=lambda: f"{len(sends_to(up))} sent, {len(sends_to(down))} refused; host: {host.output[-15:]}")
            await asyncio.sleep(1)  # anything more would be a second text

            assert sorted(sends_to(up)) == sorted(numbers)  # each recipient once, through the healthy provider
            refused = sends_to(down)
            assert len(refused) < MESSAGES / 10  # the breaker opened: the rest went straight to twilio-b
            assert len(set(refused)) == len(refused)  # none of them tried twice on the dead one either
            _, providers = await asyncio.to_thread(host.request, "GET", "/api/providers", key=key)
            first = providers["providers"][0]
            assert (first["name"], first["state"]) == ("twilio-a", "open") and "503" in first["reason"]

            down.down = None  # it recovers: after the cool-off the next recipient probes it, and it takes the rest again
            await asyncio.sleep(2.5)
            more = [f"+61413{i:06d}" for i in range(20)]
            with ThreadPoolExecutor(1) as pool:
                await asyncio.to_thread(lambda: list(pool.map(send, more)))
            await until(lambda: len(set(sends_to(down) + sends_to(up)) & set(more)) == len(more), timeout=60)
            _, providers = await asyncio.to_thread(host.request, "GET", "/api/providers", key=key)
            assert providers["providers"][0]["state"] == "closed"
            taken = json.dumps([r for r in down.requests if r["form"].get("To") in more])
            assert more[-1] in taken  # once closed, twilio-a sends again as the first of the route
            assert not set(sends_to(down)) & set(sends_to(up)) & set(more)  # and nobody was texted by both
    finally:
        await down.stop()
        await up.stop()
