"""With no proxy configured, no storage call looks up proxy settings or ~/.netrc.

An aiohttp session that trusts the environment (`trust_env=True`: azure-core's default unless the
client gets `use_env_settings=False`, which `sms.config.proxy_lookup_options()` passes when no proxy
is configured) runs `get_env_proxy_for_url` and a netrc look-up in a worker thread on every request.
The dev host runs here as `make run` and `make bench` run it (`python -m sms.devhost`, queue trigger
and timer on), with a `sitecustomize` on its PYTHONPATH that records every aiohttp session it creates
and counts the look-ups, and writes them down when the process exits.
"""
import json
import os
import textwrap

from sms.config import PROJECT_ROOT
from sms.dev import azurite
from tests.e2e.conftest import running_devhost, wait_for

LICENSEE = "e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "WS_PROXY", "WSS_PROXY")

RECORDER = textwrap.dedent('''
    """Records aiohttp sessions and environment look-ups in this process (see tests/e2e/test_env_lookups.py)."""
    import atexit, json, os, sys, threading, traceback

    import aiohttp
    import aiohttp.client

    _project = os.environ["ENV_LOOKUP_PROJECT"]
    _lock = threading.Lock()
    _report = {"argv": sys.argv, "sessions": [], "lookups": {"get_env_proxy_for_url": 0, "netrc": 0}}

    def _count(name):
        with _lock:
            _report["lookups"][name] += 1

    _init = aiohttp.ClientSession.__init__

    def _recording_init(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        ours = [f"{os.path.relpath(f.filename, _project)}:{f.lineno} {f.name}" for f in traceback.extract_stack()
                if f.filename.startswith(_project) and "site-packages" not in f.filename]
        _report["sessions"].append({"trust_env": self.trust_env, "created": " <- ".join(reversed(ours[-3:]))})

    _proxy = aiohttp.client.get_env_proxy_for_url

    def _counting_proxy(url):
        _count("get_env_proxy_for_url")
        return _proxy(url)

    _netrc = aiohttp.ClientSession._get_netrc_auth

    def _counting_netrc(self, host):
        _count("netrc")
        return _netrc(self, host)

    aiohttp.ClientSession.__init__ = _recording_init
    aiohttp.client.get_env_proxy_for_url = _counting_proxy
    aiohttp.ClientSession._get_netrc_auth = _counting_netrc

    @atexit.register
    def _write():
        path = os.path.join(os.environ["ENV_LOOKUP_REPORTS"], f"{os.getpid()}.json")
        with open(path, "w") as out:
            json.dump(_report, out)
''')


def test_the_dev_host_and_its_functions_never_look_up_proxies_or_netrc(tmp_path, monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    recorder, reports = tmp_path / "recorder", tmp_path / "reports"
    recorder.mkdir()
    reports.mkdir()
    (recorder / "sitecustomize.py").write_text(RECORDER)
    pythonpath = os.pathsep.join(filter(None, (str(recorder), os.environ.get("PYTHONPATH"))))

    # Its own Azurite: the dev host's queue listener would otherwise take other tests' jobs.
    with azurite.start() as storage, running_devhost(
        storage.connection_string, tmp_path / "outbox.jsonl", PYTHONPATH=pythonpath,
        ENV_LOOKUP_REPORTS=str(reports), ENV_LOOKUP_PROJECT=str(PROJECT_ROOT),
    ) as host:
        key = host.create_key(LICENSEE)
        status, accepted = host.request(
            "POST", "/api/sms/send", {"smsModel": {"to": [{"phoneNumber": "+61412700001"}], "messageBody": "no lookups"}}, key=key)
        assert status == 200, accepted
        # The queue trigger received, sent and deleted the job: the worker's storage calls ran too.
        assert wait_for(lambda: host.sent(), timeout=30), "\n".join(host.output[-30:])
        assert wait_for(lambda: host.request("GET", f"/api/sms/{accepted['commId']}", key=key)[1]["status"] == "sent")

    found = [json.loads(path.read_text()) for path in reports.iterdir()]
    devhost = [report for report in found if "--port" in report["argv"]]  # python -m sms.dev.host --host ... --port 0
    assert devhost and devhost[0]["sessions"], f"no aiohttp session recorded in the dev host: {found}"
    trusting = [(" ".join(report["argv"]), session["created"])
                for report in found for session in report["sessions"] if session["trust_env"]]
    assert trusting == [], f"aiohttp sessions that trust the environment (program, where created): {trusting}"
    assert all(report["lookups"] == {"get_env_proxy_for_url": 0, "netrc": 0} for report in found), found
