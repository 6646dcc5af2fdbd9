"""The Functions host indexes what function_app.app registers: check it is every route and the trigger."""
import os
import re
import subprocess
import sys

import pytest

from sms.config import ACCEPT_QUEUE, PROJECT_ROOT, SEND_QUEUE, WEBHOOK_QUEUE


def _without_constraints(template: str) -> str:
    return re.sub(r"\{(\w+):regex\(.*?\)\}(?=/|$)", r"{\1}", template)


def test_every_route_is_registered(triggers):
    http = {_without_constraints(t["route"]): set(t["methods"]) for t in triggers.values() if t["type"] == "httpTrigger"}
    sends = ["sendmessage", "send", "sms/send", "SMSSend", "sendmessage/immediate", "send/immediate", "sms/send/immediate",
             "sms/estimate"]
    expected = {f"api/{path}{suffix}": {"GET", "POST", "PUT", "PATCH", "DELETE"} for path in sends for suffix in ("", ".{format}")}
    expected |= {"api/SMSSend[]": {"GET", "POST", "PUT", "PATCH", "DELETE"},
                 "json/reply/{operation}": {"GET", "POST", "PUT", "PATCH", "DELETE"},
                 "jsv/reply/{operation}": {"GET", "POST", "PUT", "PATCH", "DELETE"},
                 "api/sms/{commId}/replies": {"GET"},
                 "api/sms/receipts/acs": {"POST", "OPTIONS"}, "api/sms/receipts/twilio": {"POST"},
                 "api/sms/inbound/twilio": {"POST"}, "api/health": {"GET"}, "api/openapi.json": {"GET"}, "api/metadata": {"GET"},
                 "api/sms": {"GET"}, "api/sms.{format}": {"GET"}, "api/usage": {"GET"}, "api/usage.{format}": {"GET"},
                 "api/providers": {"GET"}, "api/providers.{format}": {"GET"},
                 "api/webhooks/{endpointId}": {"DELETE"}, "api/webhooks/{endpointId}/rotate-secret": {"POST"},
                 "api/webhooks/{endpointId}/enable": {"POST"}, "api/webhooks/{endpointId}/deliveries": {"GET"},
                 "api/webhooks/{endpointId}/replay": {"POST"}}
    # Issue 28: ServiceStack's Add Reference and metadata pages at the root, and /api/{Operation} for each operation.
    expected |= {path: {"GET"} for path in ("types", "types/metadata", "types/typescript", "types/python", "types/csharp",
                                            "metadata", "json/metadata", "jsv/metadata")}
    operations = ("EstimateSms", "GetSmsStatus", "GetSmsReplies", "CancelSms", "QuerySms", "GetUsage", "GetProviders",
                  "GetWebhookEndpoints", "AddWebhookEndpoint", "DeleteWebhookEndpoint", "RotateWebhookSecret",
                  "EnableWebhookEndpoint", "GetWebhookDeliveries", "ReplayWebhookEvents", "GetRoutingTable", "SetRoutingTable",
                  "ResetRoutingTable", "GetGuard", "SetGuard", "ResetGuard", "GetLicenseeSettings", "SetLicenseeSettings")
    expected |= {f"api/{name}": {"GET", "POST", "PUT", "PATCH", "DELETE"} for name in operations}
    # Issue 29: API keys, and their operations.
    expected |= {"api/keys/current": {"GET"}, "api/keys/{keyId}/rotate": {"POST"}, "api/keys/{keyId}": {"DELETE"}}
    expected |= {f"api/{name}": {"GET", "POST", "PUT", "PATCH", "DELETE"}
                 for name in ("GetCurrentApiKey", "QueryApiKeys", "CreateApiKey", "RotateApiKey", "RevokeApiKey")}
    # Issue 29: the operator console's page and its files.
    expected |= {"console": {"GET"}, "console/{asset}": {"GET"}}
    # opt-outs: GET api/optouts/history, and the operations.
    expected |= {"api/optouts/history": {"GET"}}
    expected |= {f"api/{name}": {"GET", "POST", "PUT", "PATCH", "DELETE"}
                 for name in ("QueryOptOuts", "GetOptOutHistory", "AddOptOut", "RemoveOptOut")}
    # Issue 29: every licensee, and a message's webhook events, and their operations.
    expected |= {"api/licensees": {"GET"}, "api/sms/{commId}/events": {"GET"}}
    expected |= {f"api/{name}": {"GET", "POST", "PUT", "PATCH", "DELETE"} for name in ("QueryLicensees", "GetSmsEvents")}
    # GET and POST /api/webhooks are two functions on one template (a dict keyed by route keeps one), and so
    # are GET (status) and DELETE (cancel) /api/sms/{commId}.
    webhooks = sorted(sorted(t["methods"]) for t in triggers.values() if t["type"] == "httpTrigger" and t["route"] == "api/webhooks")
    assert webhooks == [["GET"], ["POST"]]
    http.pop("api/webhooks")
    message = {name: t["methods"] for name, t in triggers.items()
               if t["type"] == "httpTrigger" and _without_constraints(t["route"]) == "api/sms/{commId}"}
    assert message == {"sms_status": ["GET"], "sms_cancel": ["DELETE"]}
    assert triggers["sms_cancel"]["route"] == triggers["sms_status"]["route"]  # the same commId constraint, suffix and all
    http.pop("api/sms/{commId}")
    # GET, PUT and DELETE /api/routes (the licensee's routing table): three functions on one template.
    routes = {name: t["methods"] for name, t in triggers.items() if t["type"] == "httpTrigger" and t["route"] == "api/routes"}
    assert routes == {"routes_show": ["GET"], "routes_set": ["PUT"], "routes_clear": ["DELETE"]}
    http.pop("api/routes")
    # And GET, PUT and DELETE /api/guard (the licensee's guard).
    guard = {name: t["methods"] for name, t in triggers.items() if t["type"] == "httpTrigger" and t["route"] == "api/guard"}
    assert guard == {"guard_show": ["GET"], "guard_set": ["PUT"], "guard_clear": ["DELETE"]}
    http.pop("api/guard")
    # And GET and PUT /api/settings (the licensee's quiet hours and time zone).
    settings = {name: t["methods"] for name, t in triggers.items() if t["type"] == "httpTrigger" and t["route"] == "api/settings"}
    assert settings == {"settings_show": ["GET"], "settings_set": ["PUT"]}
    http.pop("api/settings")
    # GET and POST /api/keys (list, create): two functions on one template.
    keys = {name: t["methods"] for name, t in triggers.items() if t["type"] == "httpTrigger" and t["route"] == "api/keys"}
    assert keys == {"keys_list": ["GET"], "keys_create": ["POST"]}
    http.pop("api/keys")
    # GET, POST and DELETE /api/optouts (list, add, remove): three functions on one template.
    optouts = {name: t["methods"] for name, t in triggers.items() if t["type"] == "httpTrigger" and t["route"] == "api/optouts"}
    assert optouts == {"optouts_list": ["GET"], "optouts_add": ["POST"], "optouts_remove": ["DELETE"]}
    http.pop("api/optouts")
    assert http == expected
    assert {t["authLevel"] for t in triggers.values() if t["type"] == "httpTrigger"} == {"ANONYMOUS"}
    # The two routes with a parameter beside literal routes let only a commId in (see test_host_routing).
    assert triggers["sms_status"]["route"].startswith("api/sms/{commId:regex(^")
    assert triggers["sms_replies"]["route"].startswith("api/sms/{commId:regex(^")
    for name in ("webhooks_remove", "webhooks_rotate_secret", "webhooks_enable", "webhooks_deliveries", "webhooks_replay"):
        assert triggers[name]["route"].startswith("api/webhooks/{endpointId:regex(^[0-9a-fA-F]{{32}}$)}")
    for name in ("keys_rotate", "keys_revoke"):
        assert triggers[name]["route"].startswith("api/keys/{keyId:regex(^[0-9a-fA-F]{{16}}$)}")
    assert triggers["sms_events"]["route"].startswith("api/sms/{commId:regex(^")


def test_queue_triggers_listen_on_the_send_accept_and_webhook_queues_and_their_poison_queues(triggers):
    queues = {name: t for name, t in triggers.items() if t["type"] == "queueTrigger"}

    def on(queue: str) -> dict:
        return {"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": queue, "connection": "AzureWebJobsStorage"}

    assert queues == {
        "send_job": on(SEND_QUEUE), "send_job_poison": on(f"{SEND_QUEUE}-poison"),
        "accept_job": on(ACCEPT_QUEUE), "accept_job_poison": on(f"{ACCEPT_QUEUE}-poison"),  # issue 30's whole jobs
        "deliver_webhooks": on(WEBHOOK_QUEUE), "deliver_webhooks_poison": on(f"{WEBHOOK_QUEUE}-poison"),
    }


def test_the_sweeper_runs_on_a_timer(triggers):
    from sms.dev import ncrontab

    timers = {name: t for name, t in triggers.items() if t["type"] == "timerTrigger"}
    assert sorted(timers) == ["retention", "sweep_left_behind", "usage_roll_up"]
    assert ncrontab.parse(timers["sweep_left_behind"]["schedule"])[1] == frozenset(range(0, 60, 5))
    assert ncrontab.parse(timers["retention"]["schedule"])[1] == frozenset({30})  # every hour, at half past
    # every hour at a quarter past: a run fills what the last one left (issue 25); a day is counted about daily
    assert list(ncrontab.parse(timers["usage_roll_up"]["schedule"])[1:3]) == [frozenset({15}), frozenset(range(24))]


def test_the_app_imports_without_any_settings(triggers):
    """An exception at import makes the Functions host silently index zero functions."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMS_", "AzureWebJobs"))}
    result = subprocess.run(
        [sys.executable, "-c", "import function_app; print(len(function_app.app.get_functions()))"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(triggers))


def test_route_templates_match_whole_paths_only():
    from sms.dev.host.routing import Template

    template = Template.parse("api/sms/{commId}")
    assert template.match("/api/sms/ab\ncd") == {"commId": "ab\ncd"}
    assert template.match("/api/sms/abc\n") == {"commId": "abc\n"}
    assert Template.parse("api/send").match("/api/send\n") is None


def test_ncrontab_schedules():
    from datetime import datetime

    from sms.dev import ncrontab

    every_five = ncrontab.parse("0 */5 * * * *")
    assert ncrontab.next_after(every_five, datetime(2026, 11, 25, 0, 7, 3)) == datetime(2026, 11, 25, 0, 10, 0)
    assert ncrontab.next_after(every_five, datetime(2026, 11, 25, 0, 10, 0)) == datetime(2026, 11, 25, 0, 15, 0)
    weekdays_at_nine = ncrontab.parse("30 0 9 * * 1-5")
    assert ncrontab.next_after(weekdays_at_nine, datetime(2026, 11, 28, 10, 0)) == datetime(2026, 11, 30, 9, 0, 30)  # Sat -> Mon
    assert ncrontab.parse("0 0,30 8-10/2 1 1 *")[2] == frozenset({8, 10})
    for bad in ("* * * * *", "60 * * * * *", "*/0 * * * * *"):
        with pytest.raises(ValueError):
            ncrontab.parse(bad)


async def test_the_dev_host_fires_timer_functions():
    import asyncio

    from sms.dev.host.app import TimerTrigger
    from sms.dev.host.timers import TimerRunner

    fired = []

    async def tick(timer):
        fired.append(timer.past_due)

    runner = TimerRunner(TimerTrigger("tick", "* * * * * *", "timer", tick, run_on_startup=True))
    task = asyncio.create_task(runner.run())
    async with asyncio.timeout(5):
        while len(fired) < 2:  # once at start-up, then on the every-second schedule
            await asyncio.sleep(0.05)
    runner.stop()
    await task
    assert fired[:2] == [False, False]


def test_a_function_disabled_by_app_setting_is_not_run(monkeypatch):
    from sms.dev.host.app import is_disabled

    monkeypatch.setenv("AzureWebJobs.send_job.Disabled", "true")
    assert is_disabled("send_job") and not is_disabled("sms_status")
