"""The Functions host indexes what function_app.app registers: check it is every route and the trigger."""
import os
import subprocess
import sys

from sms.config import PROJECT_ROOT, SEND_QUEUE


def test_every_route_is_registered(triggers):
    http = {t["route"]: set(t["methods"]) for t in triggers.values() if t["type"] == "httpTrigger"}
    sends = ["sendmessage", "send", "sms/send", "SMSSend", "sendmessage/immediate", "send/immediate", "sms/send/immediate"]
    expected = {f"api/{path}{suffix}": {"GET", "POST", "PUT", "PATCH", "DELETE"} for path in sends for suffix in ("", ".{format}")}
    expected |= {"api/{operation}": {"GET", "POST", "PUT", "PATCH", "DELETE"},
                 "json/reply/{operation}": {"GET", "POST", "PUT", "PATCH", "DELETE"},
                 "jsv/reply/{operation}": {"GET", "POST", "PUT", "PATCH", "DELETE"},
                 "api/sms/{commId}": {"GET"}, "api/sms/{commId}/replies": {"GET"},
                 "api/sms/receipts/acs": {"POST", "OPTIONS"}, "api/sms/receipts/twilio": {"POST"},
                 "api/sms/inbound/twilio": {"POST"}, "api/openapi.json": {"GET"}, "api/metadata": {"GET"}}
    assert http == expected
    assert {t["authLevel"] for t in triggers.values() if t["type"] == "httpTrigger"} == {"ANONYMOUS"}


def test_the_queue_trigger_listens_on_the_send_queue(triggers):
    queue = [t for t in triggers.values() if t["type"] == "queueTrigger"]
    assert queue == [{"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": SEND_QUEUE, "connection": "AzureWebJobsStorage"}]


def test_the_app_imports_without_any_settings(triggers):
    """An exception at import makes the Functions host silently index zero functions."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMS_", "AzureWebJobs"))}
    result = subprocess.run(
        [sys.executable, "-c", "import function_app; print(len(function_app.app.get_functions()))"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(triggers))


def test_route_patterns_match_whole_paths_only():
    from sms.devhost import route_pattern

    pattern = route_pattern("api/sms/{commId}")
    assert pattern.match("/api/sms/ab\ncd").group("commId") == "ab\ncd"
    assert pattern.match("/api/sms/abc\n") is not None and pattern.match("/api/sms/abc\n").group("commId") == "abc\n"
    assert route_pattern("api/send").match("/api/send\n") is None
