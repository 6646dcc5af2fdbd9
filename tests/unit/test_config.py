import json

import pytest

from sms import cli
from sms.config import ConfigError, Settings, azurite_connection_string, load_local_settings, queue_message_encoding

STORAGE = {"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=eA==;EndpointSuffix=core.windows.net"}


def test_defaults_apply_when_only_storage_is_set():
    settings = Settings.from_env(STORAGE)
    assert (settings.provider, settings.default_region, settings.max_recipients, settings.max_body_chars,
            settings.send_concurrency, settings.api_key_cache_seconds, settings.console_outbox) == ("console", "AU", 1000, 1600, 16, 60, None)


def test_every_setting_is_read():
    settings = Settings.from_env({**STORAGE, "SMS_PROVIDER": "Console", "SMS_DEFAULT_REGION": "us", "SMS_MAX_RECIPIENTS": "5",
                                  "SMS_MAX_BODY_CHARS": "70", "SMS_SEND_CONCURRENCY": "2", "SMS_API_KEY_CACHE_SECONDS": "0",
                                  "SMS_CONSOLE_OUTBOX": "/tmp/o.jsonl"})
    assert (settings.provider, settings.default_region, settings.max_recipients, settings.max_body_chars,
            settings.send_concurrency, settings.api_key_cache_seconds, settings.console_outbox) == ("console", "US", 5, 70, 2, 0, "/tmp/o.jsonl")


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


def test_the_example_settings_file_lists_every_setting_the_code_reads():
    from sms.config import PROJECT_ROOT

    example = json.loads((PROJECT_ROOT / "local.settings.example.json").read_text())["Values"]
    read = {"AzureWebJobsStorage", "SMS_PROVIDER", "SMS_DEFAULT_REGION", "SMS_MAX_RECIPIENTS", "SMS_MAX_BODY_CHARS",
            "SMS_SEND_CONCURRENCY", "SMS_API_KEY_CACHE_SECONDS", "SMS_CONSOLE_OUTBOX", "SMS_MAX_REQUEST_BYTES",
            "SMS_MAX_SEGMENTS", "SMS_MAX_SEND_ATTEMPTS", "SMS_RETRY_BASE_SECONDS", "SMS_RATE_LIMIT_PER_SECOND",
            "SMS_SENDING_LEASE_SECONDS", "SMS_IDEMPOTENCY_HOURS", "SMS_REQUESTS_PER_MINUTE", "SMS_PUBLIC_BASE_URL", "SMS_EVENTGRID_SECRET", "ACS_CONNECTION_STRING", "ACS_FROM_NUMBER",
            "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID"}
    assert read <= set(example)
    source = "\n".join(p.read_text() for p in (PROJECT_ROOT / "sms").rglob("*.py"))
    assert all(f'"{name}"' in source for name in read)  # and the code does read each of them


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
    ({"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"),
    ({"SMS_PROVIDER": "carrier-pigeon"}, "not a provider this gateway knows"),
])
def test_a_provider_without_its_settings_fails_early(env, missing):
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env({**STORAGE, **env})


async def test_each_configured_provider_is_built():
    from sms.providers import create_provider
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
