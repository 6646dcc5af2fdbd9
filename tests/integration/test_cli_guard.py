"""`python -m sms guard show|set` against Azurite (issue 27): the operator reads a licensee's guard (its own
or the default, saying which), changes it (loosening it too: the operator may), sees what accept and dispatch
will read, and clears it; a change that is wrong exits 2 naming the field and saves nothing."""
import asyncio
import json
import uuid

import pytest

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.guard import parse_guard_text
from sms.entrypoints import cli


async def _run(argv: list[str]) -> int:
    """cli.main runs its own event loop: run it in a thread, as a shell would run it in a process."""
    return await asyncio.to_thread(cli.main, argv)


@pytest.fixture
def operator(emulator, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.setenv("SMS_GUARD_HOME_COUNTRIES", "AU,NZ")
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)
    return emulator.connection_string


async def stored_guard(connection: str, licensee: str) -> str | None:
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        settings = await adapters.licensees.get(licensee)
        return settings.guard if settings else None
    finally:
        await adapters.close()


async def test_guard_show_set_and_clear(operator, capsys):
    licensee = uuid.uuid4().hex
    assert await _run(["guard", "show", "--licensee", licensee]) == 0
    out = capsys.readouterr().out
    assert "no guard of its own: the deployment's default applies" in out
    assert "AU allow, NZ allow; every other country: block" in out and "premium_rate block, shared_cost block" in out

    assert await _run(["guard", "set", "--licensee", licensee, "--allow", "GB", "--monitor", "US", "--allow-type", "premium_rate",
                       "--pumping", "monitor", "--safe", "+614", "+61491570110", "--daily-segments", "1000",
                       "--monthly-cost", "250.5"]) == 0
    out = capsys.readouterr().out
    assert "Saved. Every worker uses it within 30 s." in out and "its own guard" in out
    guard = parse_guard_text(await stored_guard(operator, licensee))
    assert dict(guard.countries) == {"AU": "allow", "GB": "allow", "NZ": "allow", "US": "monitor"}
    assert dict(guard.number_types)["premium_rate"] == "allow" and guard.pumping.value == "monitor"
    assert guard.safe_list == ("+614", "+61491570110")
    assert (guard.caps.daily_segments, guard.caps.monthly_cost) == (1000, 250_500_000)

    # What is not given stays; --unlist and none remove.
    assert await _run(["guard", "set", "--licensee", licensee, "--unlist", "GB", "--daily-segments", "none"]) == 0
    capsys.readouterr()
    assert await _run(["guard", "show", "--licensee", licensee, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["countries"] == {"AU": "allow", "NZ": "allow", "US": "monitor"}
    assert shown["caps"] == {"dailySegments": None, "monthlySegments": None, "dailyCost": None, "monthlyCost": "250.50"}

    assert await _run(["guard", "set", "--licensee", licensee, "--clear"]) == 0
    assert "no guard of its own" in capsys.readouterr().out
    assert await stored_guard(operator, licensee) is None


@pytest.mark.parametrize("argv, words", [
    (["--allow", "XX"], "Countries.XX: 'XX' is not a country"),
    (["--block-type", "premium"], "'premium' is not a number type"),
    (["--daily-cost", "lots"], "Caps.dailyCost is an amount"),
    (["--safe", "0412"], "SafeList[0] is not an E.164 number or prefix"),
    (["--json", '{"caps": {"weekly": 1}}'], "Caps.weekly is not a cap"),
    (["--json", '{"caps": '], "--json is not JSON"),
    # Hostile values: each exits 2 naming its field, never a traceback.
    (["--daily-segments", "9" * 5000], "Caps.dailySegments is a whole number"),  # past int()'s 4300 digits
    (["--monthly-cost", "1e999999999"], "Caps.monthlyCost is an amount"),
    (["--json", '{"countries": "AU"}', "--block", "GB"], "Countries maps each key"),
    (["--json", '{"numberTypes": ["voip"]}', "--block-type", "voip"], "NumberTypes maps each key"),
    (["--json", '{"caps": 5}', "--daily-segments", "5"], "Caps is an object"),
])
async def test_a_wrong_change_exits_2_naming_the_field_and_saves_nothing(operator, capsys, argv, words):
    licensee = uuid.uuid4().hex
    assert await _run(["guard", "set", "--licensee", licensee, *argv]) == 2
    assert words in capsys.readouterr().err
    assert await stored_guard(operator, licensee) is None


async def test_guard_show_says_what_each_cap_used_and_lists_blocks_and_lift_ends_one(operator, capsys):
    from datetime import timedelta

    from sms.domain.model import utcnow
    from sms.domain.pumping import PrefixBlock

    licensee = uuid.uuid4().hex
    assert await _run(["guard", "set", "--licensee", licensee, "--daily-segments", "100"]) == 0
    adapters = build(Settings.from_env({"AzureWebJobsStorage": operator}))
    try:
        use = adapters.gateway().use
        await use.spend.reserve(licensee, (await use.licensees.guard(licensee, cached=False)).caps, "c" * 32, 7, None)
        now = utcnow()
        await adapters.guard_blocks.put(PrefixBlock(licensee, "+4479461", now, now + timedelta(minutes=30), 40, 2, timedelta(hours=1)))
    finally:
        await adapters.close()
    capsys.readouterr()
    assert await _run(["guard", "show", "--licensee", licensee]) == 0
    out = capsys.readouterr().out
    assert f"dailySegments    {now.date().isoformat()}: 7 used, cap 100; resets" in out
    assert "prefix +4479461 is blocked by pumping protection until" in out and "2 of 40 confirmed" in out

    assert await _run(["guard", "lift", "--licensee", licensee, "--prefix", "+4479461"]) == 0
    assert "Lifted the block of +4479461" in capsys.readouterr().out
    assert await _run(["guard", "show", "--licensee", licensee]) == 0
    assert "+4479461" not in capsys.readouterr().out
    assert await _run(["guard", "lift", "--licensee", licensee, "--prefix", "+4479461"]) == 1
    assert "has no block of prefix +4479461" in capsys.readouterr().err


@pytest.mark.parametrize("prefix", ["a/b", "+44#1", "", "+44 79?"])
async def test_lift_of_something_that_is_no_prefix_exits_2_naming_it(operator, capsys, prefix):
    # Table Storage refuses / \ # ? in a key: the prefix is checked before any call reaches it.
    assert await _run(["guard", "lift", "--licensee", uuid.uuid4().hex, "--prefix", prefix]) == 2
    assert "--prefix" in capsys.readouterr().err
