import json

import pytest

from sms.config import ConfigError, Settings, azurite_connection_string, load_local_settings, queue_message_encoding
from sms.entrypoints import cli

STORAGE = {"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=eA==;EndpointSuffix=core.windows.net"}


def test_defaults_apply_when_only_storage_is_set():
    settings = Settings.from_env(STORAGE)
    assert (settings.provider, settings.default_region, settings.max_recipients, settings.max_body_chars,
            settings.send_concurrency, settings.api_key_cache_seconds, settings.console_outbox) == ("console", "AU", 1000, 1600,
                                                                                                    16, 60, None)


def test_every_setting_is_read():
    settings = Settings.from_env({**STORAGE, "SMS_PROVIDER": "Console", "SMS_DEFAULT_REGION": "us", "SMS_MAX_RECIPIENTS": "5",
                                  "SMS_MAX_BODY_CHARS": "70", "SMS_SEND_CONCURRENCY": "2", "SMS_API_KEY_CACHE_SECONDS": "0",
                                  "SMS_CONSOLE_OUTBOX": "/tmp/o.jsonl"})
    assert (settings.provider, settings.default_region, settings.max_recipients, settings.max_body_chars,
            settings.send_concurrency, settings.api_key_cache_seconds, settings.console_outbox) == ("console", "US", 5, 70, 2, 0,
                                                                                                    "/tmp/o.jsonl")


def test_development_storage_shorthand_means_local_azurite():
    assert Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).storage_connection == azurite_connection_string()


@pytest.mark.parametrize("env, names", [
    ({}, "AzureWebJobsStorage is not set"),
    ({**STORAGE, "SMS_DEFAULT_REGION": "XX"}, "SMS_DEFAULT_REGION='XX'"),
    ({**STORAGE, "SMS_MAX_RECIPIENTS": "lots"}, "SMS_MAX_RECIPIENTS='lots' is not a whole number"),
    ({**STORAGE, "SMS_SEND_CONCURRENCY": "0"}, "SMS_SEND_CONCURRENCY=0 is out of range"),
    ({**STORAGE, "SMS_RATE_LIMIT_PER_SECOND": "fast"}, "SMS_RATE_LIMIT_PER_SECOND='fast' is not a number"),
    ({**STORAGE, "SMS_RATE_LIMIT_PER_SECOND": "-1"}, "SMS_RATE_LIMIT_PER_SECOND=-1 is out of range"),
])
def test_bad_settings_fail_early_naming_the_setting(env, names):
    with pytest.raises(ConfigError, match=names.replace("(", r"\(")):
        Settings.from_env(env)


def test_local_settings_values_fill_the_environment_without_overriding_it(tmp_path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A": "from file", "B": "from file"}}))
    env = {"A": "from shell"}
    load_local_settings(path, env)
    assert env == {"A": "from shell", "B": "from file"}


def settings_the_code_reads() -> set[str]:
    """Every setting name sms/config.py reads, and every one any other module reads from the environment itself
    (`os.environ.get("SMS_LOG_LEVEL", ...)` in the dev host: issue 25), found in the source, so this list cannot drift."""
    import re

    from sms.config import PROJECT_ROOT

    source = (PROJECT_ROOT / "sms" / "config.py").read_text()
    names = set(re.findall(r'(?:env\.get|_int\(env,|_number\(env,|resolve_connection)\(?\s*"([A-Za-z][A-Za-z0-9_]+)"', source))
    names |= set(re.findall(r'"((?:ACS|TWILIO)_[A-Z_]+)"', source))
    for module in (PROJECT_ROOT / "sms").rglob("*.py"):
        names |= set(re.findall(r'environ(?:\.get\(|\[)\s*"([A-Za-z][A-Za-z0-9_]+)"', module.read_text()))
    return names


def test_every_setting_the_code_reads_is_in_the_example_file_and_readme():
    from sms.config import PROJECT_ROOT

    read = settings_the_code_reads()
    assert {"AzureWebJobsStorage", "SMS_PROVIDER", "SMS_MAX_RECIPIENTS", "TWILIO_AUTH_TOKEN", "SMS_LOG_LEVEL"} <= read  # the scan works
    example = set(json.loads((PROJECT_ROOT / "local.settings.example.json").read_text())["Values"])
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert read - example == set(), "missing from local.settings.example.json"
    assert {name for name in read if f"`{name}`" not in readme} == set(), "not documented in README"


def test_queue_encoding_comes_from_host_json():
    assert queue_message_encoding({"extensions": {"queues": {"messageEncoding": "None"}}}) == "none"
    assert queue_message_encoding({}) == "base64"


def test_cli_without_storage_settings_exits_2_naming_the_setting(monkeypatch, capsys):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)
    assert cli.main(["keys", "list"]) == 2
    assert "AzureWebJobsStorage is not set" in capsys.readouterr().err


@pytest.mark.parametrize("env, missing", [
    ({"SMS_PROVIDER": "acs"}, "ACS_CONNECTION_STRING"),
    ({"SMS_PROVIDER": "acs", "ACS_CONNECTION_STRING": "endpoint=https://x/;accesskey=eA=="}, "ACS_FROM_NUMBER"),
    ({"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"},
     "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"),
    ({"SMS_PROVIDER": "carrier-pigeon"}, "not a provider this gateway knows"),
])
def test_a_provider_without_its_settings_fails_early(env, missing):
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env({**STORAGE, **env})


async def test_each_configured_provider_is_built():
    from sms.bootstrap import create_provider
    from sms.providers.acs import AcsProvider
    from sms.providers.twilio import TwilioProvider

    acs = create_provider(Settings.from_env({**STORAGE, "SMS_PROVIDER": "acs", "ACS_FROM_NUMBER": "+61400000000",
                                             "ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=eA=="}))
    twilio = create_provider(Settings.from_env({**STORAGE, "SMS_PROVIDER": "Twilio", "TWILIO_ACCOUNT_SID": "AC1",
                                                "TWILIO_AUTH_TOKEN": "t", "TWILIO_MESSAGING_SERVICE_SID": "MG1",
                                                "SMS_PUBLIC_BASE_URL": "https://sms.example/"}))
    assert isinstance(acs, AcsProvider) and isinstance(twilio, TwilioProvider)
    assert twilio._callback == "https://sms.example/api/sms/receipts/twilio"
    await acs.close()
    await twilio.close()


def test_without_a_connection_string_the_account_name_means_identity_based_storage():
    settings = Settings.from_env({"AzureWebJobsStorage__accountName": "smsgw", "AzureWebJobsStorage__clientId": "1234"})
    assert settings.storage_connection is None
    assert (settings.table_endpoint, settings.queue_endpoint) == ("https://smsgw.table.core.windows.net", "https://smsgw.queue.core.windows.net")
    assert settings.storage_client_id == "1234"
    sovereign = Settings.from_env({"AzureWebJobsStorage__tableServiceUri": "https://a.table.core.chinacloudapi.cn/",
                                   "AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.chinacloudapi.cn"})
    assert sovereign.table_endpoint == "https://a.table.core.chinacloudapi.cn"


async def test_identity_based_storage_clients_use_the_credential_and_the_endpoints():
    from sms.bootstrap import build

    class FakeCredential:
        closed = False

        async def get_token(self, *scopes, **kwargs):  # never called: building a client sends nothing
            raise AssertionError("no request expected")

        async def close(self):
            self.closed = True

    credential = FakeCredential()
    gateway = build(Settings.from_env({"AzureWebJobsStorage__accountName": "smsgw"}), credential=credential)
    try:
        assert gateway.messages._table.url.startswith("https://smsgw.table.core.windows.net")
        assert gateway.jobs._queue.url == "https://smsgw.queue.core.windows.net/sms-send"
        assert gateway.messages._table.credential is credential
    finally:
        await gateway.close()
    assert credential.closed is False  # a credential passed in is the caller's to close


# Settings the template leaves to the deployer or to their defaults, and why.
NOT_SET_BY_INFRA = {
    "AzureWebJobsStorage": "infra uses the identity-based AzureWebJobsStorage__* settings instead",
    "AzureWebJobsStorage__tableServiceUri": "derived from the account name in the public cloud",
    "AzureWebJobsStorage__queueServiceUri": "derived from the account name in the public cloud",
    "SMS_CONSOLE_OUTBOX": "local runs only: it writes numbers to a file",
    "TWILIO_API_BASE_URL": "optional: Twilio's own API host (https://api.twilio.com) unless a regional one is wanted",
}


def test_every_setting_the_code_reads_is_set_by_infra_or_optional():
    import re

    from sms.config import PROJECT_ROOT, Settings

    bicep = (PROJECT_ROOT / "infra" / "main.bicep").read_text()
    app_settings = bicep.split("appSettings: concat([", 1)[1].split("\n      ]", 1)[0]
    set_by_infra = set(re.findall(r"\{ name: '([A-Za-z0-9_]+)'", app_settings))
    optional = {name for name in settings_the_code_reads() if name.startswith("SMS_")
                and name not in ("SMS_PROVIDER", "SMS_DEFAULT_REGION", "SMS_PUBLIC_BASE_URL", "SMS_EVENTGRID_SECRET")}
    assert {name for name in settings_the_code_reads() if name.startswith("SMS_")} - optional <= set_by_infra
    missing = settings_the_code_reads() - set_by_infra - optional - set(NOT_SET_BY_INFRA)
    assert missing == set(), f"read by the code, neither set by infra/main.bicep nor listed as optional: {missing}"
    assert set_by_infra - settings_the_code_reads() - {"AzureWebJobsStorage__credential", "APPLICATIONINSIGHTS_CONNECTION_STRING"} == set()
    assert Settings.from_env({"AzureWebJobsStorage__accountName": "x"}).provider == "console"  # every optional one has a default


def test_storage_requests_are_lean_by_default_and_direct_or_sdk_on_request():
    assert Settings.from_env(STORAGE).storage_requests == "lean"
    assert Settings.from_env({**STORAGE, "SMS_STORAGE_REQUESTS": " SDK "}).storage_requests == "sdk"
    assert Settings.from_env({**STORAGE, "SMS_STORAGE_REQUESTS": "Direct"}).storage_requests == "direct"
    assert Settings.from_env({**STORAGE, "SMS_STORAGE_REQUESTS": ""}).storage_requests == "lean"
    with pytest.raises(ConfigError, match="SMS_STORAGE_REQUESTS='fast' is not one of: lean .*; direct .*; sdk "):
        Settings.from_env({**STORAGE, "SMS_STORAGE_REQUESTS": "fast"})


@pytest.mark.parametrize("value", ["lean", "direct", "sdk"])
async def test_the_storage_requests_setting_reaches_both_hot_adapters(value):
    from sms.bootstrap import build
    from tests.unit.capture import sending_way

    gateway = build(Settings.from_env({**STORAGE, "SMS_STORAGE_REQUESTS": value}))
    try:
        assert gateway.storage_requests.setting == value
        assert sending_way(gateway.messages._transactions) == sending_way(gateway.jobs._puts) == value
        # One transport for the process, shared by both, closed with the adapters.
        assert (getattr(gateway.storage_requests, "transport", None) is not None) is (value == "lean")
        if value == "lean":
            shared = gateway.storage_requests.transport
            assert gateway.jobs._puts.sender.transport is gateway.messages._transactions.sender.transport is shared
    finally:
        await gateway.close()


def test_webhook_settings_default_to_public_endpoints_only_and_a_day_of_grace():
    settings = Settings.from_env(STORAGE)
    assert (settings.webhooks_allow_private, settings.webhook_secret_grace_hours) == (False, 24)
    local = Settings.from_env({**STORAGE, "SMS_WEBHOOKS_ALLOW_PRIVATE": " True ", "SMS_WEBHOOK_SECRET_GRACE_HOURS": "0"})
    assert (local.webhooks_allow_private, local.webhook_secret_grace_hours) == (True, 0)
    assert Settings.from_env({**STORAGE, "SMS_WEBHOOKS_ALLOW_PRIVATE": "no"}).webhooks_allow_private is False
    with pytest.raises(ConfigError, match="SMS_WEBHOOKS_ALLOW_PRIVATE='maybe' is not true or false"):
        Settings.from_env({**STORAGE, "SMS_WEBHOOKS_ALLOW_PRIVATE": "maybe"})
    with pytest.raises(ConfigError, match="SMS_WEBHOOK_SECRET_GRACE_HOURS=721 is out of range"):
        Settings.from_env({**STORAGE, "SMS_WEBHOOK_SECRET_GRACE_HOURS": "721"})


ROUTES = '[{"match": "AU", "providers": ["acs-au", "twilio"], "sender": "+61400000000"}, {"match": "*", "providers": ["twilio"]}]'


def test_the_default_routing_table_is_sms_routes_or_everything_through_the_first_provider():
    """Issue 26: SMS_ROUTES is read at start (its text, checked); its provider names are checked once the
    deployment's providers are known (default_routes, given their names)."""
    from sms.config import default_routes
    from sms.domain.routing import RoutingTable, Rule

    assert Settings.from_env(STORAGE).routes_text is None and Settings.from_env({**STORAGE, "SMS_ROUTES": "  "}).routes_text is None
    assert default_routes(Settings.from_env(STORAGE), ["twilio-us", "acs-au"]) == RoutingTable.through("twilio-us", "acs-au")
    settings = Settings.from_env({**STORAGE, "SMS_ROUTES": ROUTES})
    assert settings.routes_text == ROUTES
    table = default_routes(settings, ["acs-au", "twilio"])
    assert table.rules == (Rule("AU", ("acs-au", "twilio"), "+61400000000"), Rule("*", ("twilio",)))
    with pytest.raises(ConfigError, match=r"^SMS_ROUTES: Rules\[0\].Providers\[0\]: 'acs-au' is not a provider of this deployment "
                                          r"\(its providers: twilio, console\)"):
        default_routes(settings, ["twilio", "console"])


@pytest.mark.parametrize("text, names", [
    ("[{", "SMS_ROUTES: Rules: the routing table is not valid JSON"),
    ('{"match": "AU"}', "SMS_ROUTES: Rules: a routing table needs at least one rule"),
    ('[{"match": "XX", "providers": ["twilio"]}]', r"SMS_ROUTES: Rules\[0\].Match: 'XX' is not a country"),
    ('[{"match": "XX", "providers": ["a"]}, {"match": "+1", "providers": ["b"], "sender": "+0"}]',
     r"SMS_ROUTES: Rules\[0\].Match: 'XX' is not a country .*; Rules\[1\].Sender: '\+0' is neither"),
    ("[" * 50_000, "SMS_ROUTES: Rules: the routing table is nested deeper"),
])
def test_a_routing_table_setting_that_is_no_table_stops_the_app_naming_it(text, names):
    with pytest.raises(ConfigError, match=names):
        Settings.from_env({**STORAGE, "SMS_ROUTES": text})


def test_pumping_protection_is_tuned_by_its_settings_with_documented_defaults():
    from datetime import timedelta

    from sms.domain.pumping import Rules

    assert Settings.from_env(STORAGE).pumping == Rules()
    assert Rules() == Rules(window=timedelta(hours=1), min_sends=20, delivered_floor=0.2, confirm_wait=timedelta(minutes=15),
                            block=timedelta(minutes=30), prefix_digits=4)
    tuned = Settings.from_env({**STORAGE, "SMS_PUMPING_WINDOW_SECONDS": "60", "SMS_PUMPING_MIN_SENDS": "5",
                               "SMS_PUMPING_DELIVERED_FLOOR": "0.5", "SMS_PUMPING_CONFIRM_WAIT_SECONDS": "10",
                               "SMS_PUMPING_BLOCK_SECONDS": "3", "SMS_PUMPING_PREFIX_DIGITS": "1"})
    assert tuned.pumping == Rules(window=timedelta(seconds=60), min_sends=5, delivered_floor=0.5,
                                  confirm_wait=timedelta(seconds=10), block=timedelta(seconds=3), prefix_digits=1)
    with pytest.raises(ConfigError, match="SMS_PUMPING_DELIVERED_FLOOR=2 is out of range"):
        Settings.from_env({**STORAGE, "SMS_PUMPING_DELIVERED_FLOOR": "2"})
    with pytest.raises(ConfigError, match="SMS_PUMPING_CONFIRM_WAIT_SECONDS=60 .* shorter than SMS_PUMPING_WINDOW_SECONDS=60"):
        Settings.from_env({**STORAGE, "SMS_PUMPING_WINDOW_SECONDS": "60", "SMS_PUMPING_CONFIRM_WAIT_SECONDS": "60"})


def test_one_call_is_on_wherever_a_commid_key_is_set_unless_turned_off_and_commid_keys_are_read():
    assert (Settings.from_env(STORAGE).accept_one_call, Settings.from_env(STORAGE).commid_key) == (False, None)
    settings = Settings.from_env({**STORAGE, "SMS_COMMID_KEY": "n" * 32, "SMS_COMMID_KEY_PREVIOUS": "p" * 40})
    assert (settings.accept_one_call, settings.commid_key, settings.commid_key_previous) == (True, "n" * 32, "p" * 40)
    assert Settings.from_env({**STORAGE, "SMS_COMMID_KEY": "n" * 32, "SMS_ACCEPT_ONE_CALL": " "}).accept_one_call
    off = Settings.from_env({**STORAGE, "SMS_COMMID_KEY": "n" * 32, "SMS_ACCEPT_ONE_CALL": "off"})
    assert (off.accept_one_call, off.commid_key) == (False, "n" * 32)  # the readers still recognise tagged ids


@pytest.mark.parametrize("env, names", [
    ({"SMS_COMMID_KEY": "short"}, "SMS_COMMID_KEY is 5 characters long: a commId key needs at least 32"),
    ({"SMS_COMMID_KEY": "n" * 32, "SMS_COMMID_KEY_PREVIOUS": "p" * 31}, "SMS_COMMID_KEY_PREVIOUS is 31 characters long"),
    ({"SMS_COMMID_KEY_PREVIOUS": "p" * 32}, "SMS_COMMID_KEY_PREVIOUS is set without SMS_COMMID_KEY"),
    ({"SMS_ACCEPT_ONE_CALL": "on"}, "SMS_ACCEPT_ONE_CALL is on without SMS_COMMID_KEY"),
    # App Service hands the app the reference itself when it cannot resolve it (no access to the vault, no secret yet):
    # long enough to pass for a key, and not the key the other instances have.
    ({"SMS_COMMID_KEY": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/commid-key)"},
     "SMS_COMMID_KEY is a Key Vault reference App Service could not resolve"),
    ({"SMS_ACCEPT_ONE_CALL": "sometimes", "SMS_COMMID_KEY": "n" * 32}, "SMS_ACCEPT_ONE_CALL='sometimes' is not true or false"),
])
def test_one_call_settings_refuse_what_cannot_work(env, names):
    with pytest.raises(ConfigError, match=names):
        Settings.from_env({**STORAGE, **env})


def test_the_tuning_mints_under_the_key_and_recognises_the_previous_one():
    from datetime import datetime, timezone

    from sms.bootstrap import tuning
    from sms.domain.comm_ids import CommIdKeys, Tagged

    at = datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert tuning(Settings.from_env(STORAGE)).comm_id_keys is None
    rotated = tuning(Settings.from_env({**STORAGE, "SMS_COMMID_KEY": "n" * 32, "SMS_COMMID_KEY_PREVIOUS": "p" * 32,
                                        "SMS_ACCEPT_ONE_CALL": "on"}))
    assert rotated.accept_one_call
    before = CommIdKeys(b"p" * 32).mint("a" * 32, at, 2)
    assert rotated.comm_id_keys.recognised(before, "a" * 32, at) == Tagged(at, 2)
    assert CommIdKeys(b"n" * 32).recognised(rotated.comm_id_keys.mint("a" * 32, at, 2), "a" * 32, at) == Tagged(at, 2)
