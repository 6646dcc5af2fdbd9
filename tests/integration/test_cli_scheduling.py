"""`python -m sms messages cancel` and `python -m sms licensees show|set`, against Azurite: an operator
cancels a message through the same use case as DELETE /api/sms/{commId}, and sets the quiet hours and
time zone every dispatch reads."""
import asyncio
import uuid
from datetime import datetime, timedelta

import pytest

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.errors import StillChanging
from sms.domain.model import Status, utcnow
from sms.entrypoints import cli
from sms.usecases.cancel import Cancel
from tests.fakes import command, sms_of


async def _run(argv: list[str]) -> int:
    """cli.main runs its own event loop: run it in a thread, as a shell would run it in a process."""
    return await asyncio.to_thread(cli.main, argv)


@pytest.fixture
def operator(emulator, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)
    return emulator.connection_string


async def scheduled(connection: str, licensee: str, *numbers: str) -> str:
    """A message sent with a sendAt an hour ahead, through the use cases over the real adapters."""
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        await adapters.ensure_storage()
        send_at = (utcnow() + timedelta(hours=1)).isoformat()
        answer = await sms_of(adapters).accept(command(*numbers, body="Flu clinic at 9", send_at=send_at), licensee)
        assert answer.summary.startswith(f"Scheduled for {len(numbers)} recipient")
        message, _ = await adapters.messages.load(answer.comm_id)
        assert message.send_at == datetime.fromisoformat(send_at) and message.urgent is False  # as stored in the table
        return answer.comm_id
    finally:
        await adapters.close()


async def statuses(connection: str, comm_id: str) -> list[Status]:
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        _, recipients = await adapters.messages.load(comm_id)
        return [r.status for r in recipients]
    finally:
        await adapters.close()


async def test_messages_cancel_cancels_what_waits_and_prints_the_counts(operator, capsys):
    licensee, other = uuid.uuid4().hex, uuid.uuid4().hex
    comm_id = await scheduled(operator, licensee, "+61412000101", "+61412000102")

    assert await _run(["messages", "cancel", "--licensee", other, comm_id]) == 1  # another licensee's: not found, untouched
    assert f"No message with commId {comm_id}" in capsys.readouterr().err
    assert await statuses(operator, comm_id) == [Status.SCHEDULED, Status.SCHEDULED]

    assert await _run(["messages", "cancel", "--licensee", licensee, comm_id.upper()]) == 0
    assert f"Cancelled 2 recipient(s) of message {comm_id}." in capsys.readouterr().out
    assert await statuses(operator, comm_id) == [Status.CANCELLED, Status.CANCELLED]

    assert await _run(["messages", "cancel", "--licensee", licensee, comm_id]) == 0
    # Issue 25: it said "not cancelled (already past waiting): 2 cancelled".
    assert capsys.readouterr().out.strip() == f"Cancelled 0 recipient(s) of message {comm_id}; 2 already cancelled."

    with pytest.raises(SystemExit) as refused:  # argparse: a commId that is not a Guid
        await _run(["messages", "cancel", "--licensee", licensee, "not-a-guid"])
    assert refused.value.code == 2 and "'not-a-guid' is not a Guid" in capsys.readouterr().err


async def test_a_cancel_that_kept_losing_races_says_so_and_exits_2(operator, capsys, monkeypatch):
    """As DELETE answers 409 then: a message, not a traceback."""
    licensee = uuid.uuid4().hex
    comm_id = await scheduled(operator, licensee, "+61412000103")

    async def kept_losing(self, licensee_id, comm_id):
        raise StillChanging(f"Message {comm_id} kept changing while it was being cancelled (it is being sent now): cancel it again")

    monkeypatch.setattr(Cancel, "cancel", kept_losing)
    assert await _run(["messages", "cancel", "--licensee", licensee, comm_id]) == 2
    assert "error: Message" in (err := capsys.readouterr().err) and "cancel it again" in err and "Traceback" not in err


async def test_licensees_set_and_show_the_quiet_hours_and_time_zone(operator, capsys):
    licensee = uuid.uuid4().hex

    assert await _run(["licensees", "show", "--licensee", licensee]) == 0
    shown = capsys.readouterr().out
    assert f"Licensee {licensee}" in shown and "Quiet hours: none" in shown and "Time zone:   UTC" in shown

    assert await _run(["licensees", "set", "--licensee", licensee, "--quiet-hours", "21:00-8:00", "--time-zone", "Australia/Sydney"]) == 0
    out = capsys.readouterr().out
    assert "Quiet hours: 21:00-08:00" in out and "Time zone:   Australia/Sydney" in out and "within 30 s" in out
    assert await _run(["licensees", "show", "--licensee", licensee]) == 0
    shown = capsys.readouterr().out
    assert "Quiet hours: 21:00-08:00 (in each recipient's local time" in shown and "uses Australia/Sydney" in shown

    adapters = build(Settings.from_env({"AzureWebJobsStorage": operator}))
    try:  # what every dispatch reads
        hours = await adapters.gateway().use.licensees.quiet_hours(licensee)
        assert str(hours) == "21:00-08:00 (Australia/Sydney)"
    finally:
        await adapters.close()

    # A zone alone keeps the window; a wrong window or zone is refused naming it, and changes nothing.
    assert await _run(["licensees", "set", "--licensee", licensee, "--time-zone", "Australia/Perth"]) == 0
    assert "Quiet hours: 21:00-08:00" in (out := capsys.readouterr().out) and "Australia/Perth" in out
    assert await _run(["licensees", "set", "--licensee", licensee, "--quiet-hours", "9pm-8am"]) == 2
    assert "QuietHours: quiet hours are a window like 21:00-08:00" in capsys.readouterr().err
    assert await _run(["licensees", "set", "--licensee", licensee, "--time-zone", "Mars/Olympus"]) == 2
    assert "TimeZone: 'Mars/Olympus' is not a time zone" in capsys.readouterr().err
    assert await _run(["licensees", "set", "--licensee", licensee]) == 2
    assert "give --quiet-hours, --no-quiet-hours or --time-zone" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse: one or the other
        await _run(["licensees", "set", "--licensee", licensee, "--quiet-hours", "21:00-08:00", "--no-quiet-hours"])
    assert refused.value.code == 2
    capsys.readouterr()

    assert await _run(["licensees", "set", "--licensee", licensee, "--no-quiet-hours"]) == 0
    capsys.readouterr()
    assert await _run(["licensees", "show", "--licensee", licensee]) == 0
    shown = capsys.readouterr().out
    assert "Quiet hours: none" in shown and "Time zone:   Australia/Perth" in shown


async def test_a_time_zone_name_the_zone_database_cannot_even_look_up_is_refused_with_exit_2(operator, capsys):
    """Issue 23: a 300-character --time-zone ended in an OSError's traceback (file name too long); so did a
    zone database directory such as America. Refused as any other name that is not a zone, naming it."""
    licensee = uuid.uuid4().hex
    for zone in ("Z" * 300, "America", "Australia/" + "x" * 300):
        assert await _run(["licensees", "set", "--licensee", licensee, "--time-zone", zone]) == 2, zone[:20]
        err = capsys.readouterr().err
        assert "error: TimeZone: " in err and "is not a time zone" in err and "Traceback" not in err, err
    assert await _run(["licensees", "show", "--licensee", licensee]) == 0
    assert "Time zone:   UTC" in capsys.readouterr().out  # nothing was saved
