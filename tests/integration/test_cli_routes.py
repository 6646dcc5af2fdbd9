"""`python -m sms routes show|set` against Azurite (issue 26): an operator gives a licensee its own routing
table from a file, sees it (or, marked as such, the deployment's default), clears it; a file that is no
table, or names a provider the deployment lacks, exits 2 with the reason and saves nothing."""
import asyncio
import io
import json
import uuid

import pytest

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.routing import MAX_TEXT_CHARS
from sms.entrypoints import cli

TABLE = [{"match": "AU", "providers": ["console"], "sender": "+61400000000"}, {"match": "+1", "providers": ["console"]},
         {"match": "*", "providers": ["console"]}]


async def _run(argv: list[str]) -> int:
    """cli.main runs its own event loop: run it in a thread, as a shell would run it in a process."""
    return await asyncio.to_thread(cli.main, argv)


@pytest.fixture
def operator(emulator, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.delenv("SMS_PROVIDER", raising=False)  # the console provider: the deployment's one provider
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)
    return emulator.connection_string


async def stored_routes(connection: str, licensee: str) -> str | None:
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        settings = await adapters.licensees.get(licensee)
        return settings.routes if settings else None
    finally:
        await adapters.close()


async def test_routes_set_show_and_clear(operator, tmp_path, capsys):
    licensee, other = uuid.uuid4().hex, uuid.uuid4().hex
    assert await _run(["routes", "show", "--licensee", licensee]) == 0
    out = capsys.readouterr().out
    assert f"Licensee {licensee} has no routing table of its own: the deployment's default applies" in out
    assert "*" in out and "console" in out

    path = tmp_path / "table.json"
    path.write_text(json.dumps({"rules": TABLE}, indent=2))  # what GET /api/routes answers reads as well as a list
    assert await _run(["routes", "set", "--licensee", licensee, "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"Licensee {licensee}: its own routing table" in out and "+61400000000" in out and "Saved." in out
    assert json.loads(await stored_routes(operator, licensee)) == TABLE

    assert await _run(["routes", "show", "--licensee", licensee.upper()]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert ["1", "AU", "console", "+61400000000"] in lines and ["2", "+1", "console", "-"] in lines and ["3", "*", "console", "-"] in lines
    assert await _run(["routes", "show", "--licensee", licensee, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == TABLE  # what --file reads back
    assert await _run(["routes", "show", "--licensee", other]) == 0
    assert "no routing table of its own" in capsys.readouterr().out  # another licensee's is not this one's

    assert await _run(["routes", "set", "--licensee", licensee, "--clear"]) == 0
    assert "the deployment's default applies" in capsys.readouterr().out
    assert await stored_routes(operator, licensee) is None


async def test_routes_show_without_a_licensee_is_the_deployment_s_default(operator, capsys):
    assert await _run(["routes", "show"]) == 0
    out = capsys.readouterr().out
    assert "The deployment's default routing table" in out and ["1", "*", "console", "-"] in [line.split() for line in out.splitlines()]
    assert await _run(["routes", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"match": "*", "providers": ["console"]}]


async def test_a_table_read_from_stdin(operator, monkeypatch, capsys):
    licensee = uuid.uuid4().hex
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(TABLE).encode())))
    assert await _run(["routes", "set", "--licensee", licensee, "--file", "-"]) == 0
    assert json.loads(await stored_routes(operator, licensee)) == TABLE


@pytest.mark.parametrize("content, reason", [
    (b'[{"match": "AU", "providers": ["twilio"]}]', "error: Rules[0].Providers[0]: 'twilio' is not a provider of this deployment "
                                                    "(its providers: console, simulator)"),
    (b'[{"match": "XX", "providers": ["console"], "sender": "+0"}]', "error: Rules[0].Match: 'XX' is not a country"),
    (b'[{"match": "*", "providers": ["console"]}, {"match": "AU", "providers": ["console"]}]', "Rules[1]: can never match"),
    (b"[{", "error: Rules: the routing table is not valid JSON"),
    (b"[" * 100_000, "error: Rules: the routing table is nested deeper"),
    (b"", "error: Rules: the routing table is empty"),
    (b"\xff\xfe[]", "error: --file: not UTF-8 text"),
    (b"[" + b" " * (4 * MAX_TEXT_CHARS) + b"]", f"a routing table is at most {MAX_TEXT_CHARS} characters"),
    (b"[" + b" " * MAX_TEXT_CHARS + b"]", f"at most {MAX_TEXT_CHARS} are read"),
])
async def test_a_file_that_is_no_table_exits_2_with_the_reason_and_saves_nothing(operator, tmp_path, capsys, content, reason):
    licensee = uuid.uuid4().hex
    path = tmp_path / "table.json"
    path.write_bytes(content)
    assert await _run(["routes", "set", "--licensee", licensee, "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err, err
    assert await stored_routes(operator, licensee) is None


async def test_a_file_that_cannot_be_read_or_both_options_exit_2(operator, tmp_path, capsys):
    licensee = uuid.uuid4().hex
    assert await _run(["routes", "set", "--licensee", licensee, "--file", str(tmp_path / "missing.json")]) == 2
    assert "error: --file: cannot read" in (err := capsys.readouterr().err) and "missing.json" in err
    assert await _run(["routes", "set", "--licensee", licensee, "--file", str(tmp_path)]) == 2  # a directory
    assert "error: --file: cannot read" in capsys.readouterr().err
    for argv in (["--clear", "--file", str(tmp_path / "t.json")], [], ["--file", "x"]):
        args = ["routes", "set", "--licensee", licensee, *argv] if argv != ["--file", "x"] else ["routes", "set", "--file", "x"]
        with pytest.raises(SystemExit) as refused:  # argparse: --file or --clear, one of them; and whose
            await _run(args)
        assert refused.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        await _run(["routes", "set", "--licensee", "not-a-guid", "--clear"])
    assert "is not a Guid" in capsys.readouterr().err
