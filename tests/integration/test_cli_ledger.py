"""`python -m sms messages list` and `python -m sms usage`, against Azurite: what an operator sees is
what GET /api/sms and /api/usage answer, through the same readers."""
import uuid

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.model import Contact, Message, Recipient, Status, reference_for, utcnow
from sms.entrypoints import cli
from sms.usecases.ledger import Ledger

A, B = "c1" * 16, "c2" * 16


async def recorded(connection: str, licensee: str, phone: str, status: Status) -> str:
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        await adapters.ensure_storage()
        comm_id = uuid.uuid4().hex
        message = Message(comm_id=comm_id, licensee_id=licensee, body="Flu clinic on Friday", sender=Contact(),
                          recipient_count=1, encoding="GSM-7", segments=1)
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
    assert today.split()[1:4] == ["1", "1", "0"] and "failed 1" in today and "console" not in today


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
