"""`python -m sms messages list` and `python -m sms usage`, against Azurite: what an operator sees is
what GET /api/sms and /api/usage answer, through the same readers."""
import uuid
from datetime import datetime, time, timedelta, timezone

import pytest

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.model import Contact, Message, Recipient, Status, reference_for, utcnow
from sms.entrypoints import cli
from sms.storage import DayUsage
from sms.usecases.ledger import Ledger

A, B = "c1" * 16, "c2" * 16


async def recorded(connection: str, licensee: str, phone: str, status: Status, created_at: datetime | None = None) -> str:
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        await adapters.ensure_storage()
        comm_id = uuid.uuid4().hex
        message = Message(comm_id=comm_id, licensee_id=licensee, body="Flu clinic on Friday", sender=Contact(),
                          recipient_count=1, encoding="GSM-7", segments=1, created_at=created_at or utcnow())
        recipient = Recipient(comm_id=comm_id, seq=0, recipient_id=uuid.uuid4().hex, phone_number=phone)
        await Ledger(adapters.ledger).record(message, [recipient.moved_to(status, at=utcnow())], "console")
        return comm_id
    finally:
        await adapters.close()


async def test_messages_list_and_usage_show_the_licensees_ledger(emulator, monkeypatch, capsys):
    sam = f"+6141277{uuid.uuid4().int % 10**4:04d}"
    mine = await recorded(emulator.connection_string, A, sam, Status.FAILED)
    theirs = await recorded(emulator.connection_string, B, sam, Status.SENT)
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)

    assert await _run(["messages", "list", "--licensee", A, "--phone", "0" + sam[3:], "--status", "failed"]) == 0
    shown = capsys.readouterr().out
    assert mine in shown and reference_for(mine) in shown and f"{sam} failed" in shown and theirs not in shown

    assert await _run(["messages", "list", "--licensee", A, "--status", "lost"]) == 2
    assert "status: must be one of" in capsys.readouterr().err

    assert await _run(["usage", "--licensee", A]) == 0
    [today] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(utcnow().date().isoformat())]
    # A failed recipient is a recipient, and no segment billed: no provider took it.
    assert today.split()[1:5] == ["1", "1", "0", "UTC"] and "failed 1" in today and "console" not in today

    with pytest.raises(SystemExit) as refused:
        await _run(["usage"])
    assert refused.value.code == 2 and "--licensee" in capsys.readouterr().err


async def test_usage_rebuild_recounts_days_from_the_ledger_and_replaces_their_totals(emulator, monkeypatch, capsys):
    """Issue 25: the operator's recount, for days the roll-up missed or counted wrong (an inflated total
    from before issue 23's fix, here), for one licensee or every one with messages in the range."""
    licensee, day = uuid.uuid4().hex, utcnow().date() - timedelta(days=5)
    await recorded(emulator.connection_string, licensee, "+61412770001", Status.SENT, datetime.combine(day, time(12), timezone.utc))
    adapters = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    try:
        await adapters.ledger.save_usage(DayUsage(licensee, day, 1, 1, 99, {"sent": 1}, {"console": 1}, utcnow()))
    finally:
        await adapters.close()
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)

    assert await _run(["usage", "rebuild", "--from", day.isoformat(), "--to", day.isoformat(), "--licensee", licensee]) == 0
    out = capsys.readouterr().out
    assert f"Licensee {licensee} (its days in UTC): 1 day(s) with messages recounted, their totals replaced" in out, out
    assert await _run(["usage", "--licensee", licensee, "--from", day.isoformat(), "--to", day.isoformat()]) == 0
    [shown] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(day.isoformat())]
    assert shown.split()[1:5] == ["1", "1", "1", "UTC"]  # one segment, not 99

    assert await _run(["usage", "rebuild", "--from", (day - timedelta(days=1)).isoformat(), "--to", day.isoformat()]) == 0
    assert f"Licensee {licensee} (its days in UTC): 1 day(s) with messages recounted" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "reason"), [
    (["--from", "2026-12-05", "--to", "2026-12-01"], "error: to: must not be before from"),
    (["--from", "2025-01-01", "--to", "2026-12-01"], "error: to: at most 400 days from from"),
    (["--from", "{long_ago}", "--to", "{yesterday}"], "is past retention: messages created before"),
    (["--from", "{yesterday}", "--to", "{tomorrow}"], "has not ended in any zone"),
    (["--from", "{yesterday}", "--to", "{tomorrow}", "--licensee", "c3" * 16], "has not ended in UTC"),
], ids=["to before from", "over 400 days", "past retention", "not ended", "not ended for the licensee"])
async def test_usage_rebuild_refuses_a_range_it_cannot_recount_with_exit_2_and_the_reason(emulator, monkeypatch, capsys, argv, reason):
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)
    today = utcnow().date()
    days = {"long_ago": today - timedelta(days=200), "yesterday": today - timedelta(days=1), "tomorrow": today + timedelta(days=1)}
    assert await _run(["usage", "rebuild", *(a.format(**{k: d.isoformat() for k, d in days.items()}) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err, err


@pytest.mark.parametrize(("argv", "reason"), [
    (["--from", "2026-13-01", "--to", "2026-12-05"], "argument --from: must be a day, e.g. 2026-12-01"),
    (["--from", "yesterday", "--to", "2026-12-05"], "argument --from: must be a day, e.g. 2026-12-01"),
    (["--from", "2026-12-01", "--to", "20261205"], "argument --to: must be a day, e.g. 2026-12-01"),
    (["--from", "2026-12-01"], "the following arguments are required: --to"),
])
async def test_usage_rebuild_refuses_a_malformed_day_before_reading_anything(argv, reason, capsys):
    with pytest.raises(SystemExit) as refused:
        await _run(["usage", "rebuild", *argv])
    assert refused.value.code == 2 and reason in capsys.readouterr().err


async def test_usage_rebuild_wants_its_licensee_after_rebuild(capsys):
    """Given before `rebuild`, --licensee would be set over by rebuild's own (unset: every licensee)."""
    with pytest.raises(SystemExit) as refused:
        await _run(["usage", "--licensee", "c4" * 16, "rebuild", "--from", "2026-12-01", "--to", "2026-12-05"])
    assert refused.value.code == 2 and "after `rebuild`" in capsys.readouterr().err


async def test_an_instant_the_ledger_cannot_hold_is_refused_with_exit_2_and_the_reason(emulator, monkeypatch, capsys):
    """Issue 23: `messages list --to 0001-01-01T00:00:00Z` ended in an OverflowError's traceback."""
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)
    for option, value in (("--to", "0001-01-01T00:00:00Z"), ("--from", "9999-12-31T23:59:59-14:00"), ("--to", "0001-01-01")):
        assert await _run(["messages", "list", "--licensee", A, option, value]) == 2, (option, value)
        err = capsys.readouterr().err
        assert f"error: {option[2:]}: must be" in err and "Traceback" not in err, err


async def _run(argv: list[str]) -> int:
    """cli.main runs its own event loop: run it in a thread, as a shell would run it in a process."""
    import asyncio

    return await asyncio.to_thread(cli.main, argv)


async def test_messages_list_headers_sit_over_their_columns(emulator, monkeypatch, capsys):
    """Issue 25: every header sat one column right of its data (CREATED was padded to 20, its dates are 19)."""
    sam = f"+6141278{uuid.uuid4().int % 10**4:04d}"
    mine = await recorded(emulator.connection_string, A, sam, Status.DELIVERED)
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)
    assert await _run(["messages", "list", "--licensee", A, "--phone", sam]) == 0
    header, line = capsys.readouterr().out.splitlines()[:2]
    expected = {"CREATED": utcnow().strftime("%Y-%m-%d"), "COMMID": mine, "REFERENCE": reference_for(mine),
                "STATUS": f"{sam} delivered", "RECIPIENTS": "1", "PREVIEW": "'Flu clinic on Friday'"}
    for label, value in expected.items():
        column = header.index(label)
        assert line[column:].startswith(value) and (column == 0 or line[column - 1] == " "), (label, header, line)
