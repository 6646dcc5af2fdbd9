"""Add ServiceStack Reference for TypeScript, end to end (issue 28): npm's `typescript-ref` writes dtos.ts from the
dev host, `tsc --strict` compiles it with a program, the program calls every operation through @servicestack/client's
JsonServiceClient, and `typescript-ref` run again updates the file from the options its header carries.

Everything talks to 127.0.0.1 only: typescript-ref reports to servicestack.net unless SERVICESTACK_TELEMETRY_OPTOUT=1
(servicestack-cli src/index.ts), and offline that report kills it with an unhandled error after the file is written.
The program (tests/e2e/typescript/client.ts) prints each operation's answer as JSON; the assertions are here.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from sms.config import PROJECT_ROOT
from sms.dev import azurite
from sms.entrypoints.operations import OPERATIONS
from tests.e2e.conftest import running_devhost
from tests.webhook_receiver import ReceiverThread, WebhookReceiver

BIN = PROJECT_ROOT / "node_modules" / ".bin"
PROGRAM = Path(__file__).parent / "typescript" / "client.ts"
LICENSEE = uuid.uuid4().hex
ADMIN_LICENSEE = uuid.uuid4().hex
OFFLINE = {**os.environ, "SERVICESTACK_TELEMETRY_OPTOUT": "1"}
COMM_ID = re.compile(r"[0-9a-f]{32}")
STRICT = ["--strict", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext"]  # Node's ESM


def run(args: list[str], cwd: Path, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=OFFLINE, capture_output=True, text=True, timeout=timeout, **kwargs)


def masked(text: str) -> str:
    return re.sub(r"(?m)^Date: .*$", "Date: <masked>", text)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A dev host of its own: webhook receivers on 127.0.0.1 need SMS_WEBHOOKS_ALLOW_PRIVATE, which the shared one has not."""
    with azurite.start() as storage:
        with running_devhost(storage.connection_string, tmp_path_factory.mktemp("ts-host") / "outbox.jsonl",
                             SMS_WEBHOOKS_ALLOW_PRIVATE="true") as devhost:
            yield devhost


@pytest.fixture(scope="module")
def project(tmp_path_factory, host):
    """A TypeScript project: ref/dtos.ts as `typescript-ref <url> dtos.ts` wrote it, the program beside it, ESM."""
    root = tmp_path_factory.mktemp("ts-project")
    (root / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    (root / "package.json").write_text('{"type": "module", "private": true}\n')
    ref = root / "ref"  # typescript-ref's update walks the folder for *dtos.ts: not through node_modules
    ref.mkdir()
    added = run([str(BIN / "typescript-ref"), host.base_url, "dtos.ts"], ref)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "Saved to: dtos.ts" in added.stdout
    shutil.copy(PROGRAM, root / "client.ts")
    return root


def test_the_program_calls_every_operation():
    # An operation added to the gateway must be added to the program too.
    called = set(re.findall(r"new (\w+)\(", PROGRAM.read_text()))
    assert {op.name for op in OPERATIONS} - called == set()


def test_typescript_ref_writes_what_types_typescript_answers(project, host):
    with urllib.request.urlopen(host.base_url + "/types/typescript", timeout=30) as response:
        served = response.read().decode()
    written = (project / "ref" / "dtos.ts").read_text()
    assert masked(written) == masked(served)
    assert f"BaseUrl: {host.base_url}\n" in written and "//IncludeTypes: \n" in written
    assert "export class GetSmsStatus implements IReturn<MessageState>, IGet" in written


def test_the_file_and_a_program_using_it_compile_with_tsc_strict(project):
    checked = run([str(BIN / "tsc"), *STRICT, "--noEmit", "ref/dtos.ts", "client.ts"], project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "@ts-nocheck" not in (project / "ref" / "dtos.ts").read_text()


@pytest.fixture(scope="module")
def results(project, host):
    """What the program printed, every operation's answer; the receiver's deliveries alongside."""
    built = run([str(BIN / "tsc"), *STRICT, "--outDir", "build", "ref/dtos.ts", "client.ts"], project)
    assert built.returncode == 0, built.stdout + built.stderr
    env = {**OFFLINE, "BASE_URL": host.base_url, "API_KEY": host.create_key(LICENSEE),
           "ADMIN_KEY": host.create_key(ADMIN_LICENSEE, "--role", "admin")}
    with ReceiverThread() as receivers:
        receiver = receivers.start(WebhookReceiver(secret=""))
        env["RECEIVER_URL"] = receiver.url
        with subprocess.Popen(["node", "build/client.js"], cwd=project, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as program:
            try:
                first = program.stdout.readline()
                assert first.startswith("SECRET whsec_"), first + program.stderr.read()
                receiver.secret = first.split()[1]
                program.stdin.write("go\n")
                program.stdin.flush()
                out, err = program.communicate(timeout=240)
            finally:
                program.kill()
        assert program.returncode == 0, out + err
        [line] = [line for line in out.splitlines() if line.startswith("RESULTS ")]
        return json.loads(line.removeprefix("RESULTS ")), list(receiver.verified), host.sent()


def test_sending_through_api_post_and_send_all(results):
    answers, _, outbox = results
    for name in ("sendWithApi", "sendWithPost"):
        assert answers[name]["status"] is True and COMM_ID.fullmatch(answers[name]["commId"]), answers[name]
        assert answers[name]["message"] == "Queued for 1 recipient" and answers[name]["reference"].startswith("SMS-")
        assert answers[name]["recipients"] == 1 and answers[name]["segments"] == 1 and answers[name]["encoding"] == "GSM-7"
    batch = answers["sendAll"]
    assert [r["status"] for r in batch] == [True, True] and batch[0]["commId"] != batch[1]["commId"]
    sent_to = {m["to"] for m in outbox}
    assert {"+61412700101", "+61412700102", "+61412700103", "+61412700104"} <= sent_to, outbox[:3]


def test_api_keys_through_typed_requests(results):
    answers = results[0]
    assert (answers["currentKey"]["licenseeId"], answers["currentKey"]["role"]) == (LICENSEE, "licensee")
    made = answers["createKey"]
    assert made["key"].startswith(f"sms_{made['keyId']}.") and (made["readOnly"], made["name"]) == (True, "desk")
    listed = answers["queryKeys"]["keys"]
    assert made["keyId"] in [k["keyId"] for k in listed] and all("key" not in k for k in listed)
    rotated = answers["rotateKey"]
    assert rotated["replacedKeyId"] == made["keyId"] and rotated["newKey"]["readOnly"] is True and rotated["newKey"]["key"]
    assert answers["revokeKey"]["keyId"] == rotated["newKey"]["keyId"] and answers["revokeKey"]["revokedAt"]


def test_a_validation_error_reads_as_a_response_status(results):
    invalid = results[0]["invalid"]
    assert invalid["succeeded"] is False
    error = invalid["error"]
    assert error["errorCode"] == "ValidationException" and error["message"] == "SMSModel.To needs at least one recipient"
    assert error["errors"] == [{"errorCode": "NotEmpty", "fieldName": "SMSModel.To", "message": error["message"]}]


def test_reading_cancelling_and_searching(results):
    answers = results[0]
    first = answers["sendWithApi"]
    status = answers["status"]
    assert status["commId"] == first["commId"] and status["licenseeId"] == LICENSEE and status["reference"] == first["reference"]
    assert [r["phoneNumber"] for r in status["recipients"]] == ["+61412700101"]
    # The answer right after accept: queued, for one recipient, whether or not the worker had written it yet.
    right_after = answers["statusRightAfter"]
    assert (right_after["commId"], right_after["recipientCount"]) == (first["commId"], 1)
    assert right_after["status"] in ("queued", "sending", "sent", "delivered") and len(right_after["recipients"]) in (0, 1)
    assert answers["replies"] == {"commId": first["commId"], "replies": []}
    scheduled = answers["sendScheduled"]
    assert answers["cancel"]["commId"] == scheduled["commId"] and answers["cancel"]["cancelled"] == 1
    assert answers["statusAfterCancel"]["status"] == "cancelled"
    assert [m["commId"] for m in answers["queryByPhoneNumber"]["messages"]] == [answers["sendWithPost"]["commId"]]
    assert answers["queryByPhoneNumber"]["messages"][0]["recipient"]["phoneNumber"] == "+61412700102"
    assert [m["commId"] for m in answers["queryByReference"]["messages"]] == [first["commId"]]
    days = answers["usage"]["days"]
    # This licensee's five messages (one cancelled): its own, on a dev host of this module's own.
    assert sum(d["messages"] for d in days) == 5 and sum(d["byStatus"].get("cancelled", 0) for d in days) == 1
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", d["day"]) and d["timeZone"] == "UTC" for d in days)


def test_estimate(results):
    estimate = results[0]["estimate"]
    lines = {line["phoneNumber"]: line for line in estimate["lines"]}
    assert lines["+61412700105"]["country"] == "AU" and lines["+61412700105"]["action"] == "allow"
    assert lines["+447400123456"]["country"] == "GB" and lines["+447400123456"]["action"] == "block"
    assert estimate["recipients"] == 1 and estimate["blocked"] == 1 and estimate["encoding"] == "GSM-7"


def test_providers_routing_table_and_guard(results):
    answers = results[0]
    assert "console" in [p["name"] for p in answers["getProviders"]["providers"]]
    assert answers["getRoutingTableBefore"]["source"] == "default"
    rules = [{"match": "AU", "providers": ["console"], "sender": "Clinic"}, {"match": "*", "providers": ["console"]}]
    assert answers["setRoutingTable"] == {"source": "licensee", "rules": rules} == answers["getRoutingTable"]
    assert answers["resetRoutingTable"]["source"] == "default"
    assert answers["resetGuard"]["source"] == "default"
    assert answers["setGuard"]["source"] == "licensee" and answers["setGuard"]["caps"]["dailySegments"] == 1000
    assert answers["getGuard"]["caps"] == answers["setGuard"]["caps"]
    quiet = {"licenseeId": LICENSEE, "quietHours": "21:00-08:00", "timeZone": "Australia/Sydney"}
    assert {k: answers["setLicenseeSettings"][k] for k in quiet} == quiet == {k: answers["getLicenseeSettings"][k] for k in quiet}
    assert "quietHours" not in answers["clearQuietHours"] and answers["clearQuietHours"]["timeZone"] == "UTC"


def test_webhook_endpoints_deliveries_rotation_replay_and_removal(results):
    answers, delivered, _ = results
    added = answers["addWebhookEndpoint"]
    endpoint_id = added["endpointId"]
    assert added["enabled"] is True and added["eventTypes"] == ["message.sent", "message.cancelled"]
    [listed] = answers["webhookEndpoints"]["endpoints"]
    assert listed["endpointId"] == endpoint_id and "secret" not in listed
    assert {d["outcome"] for d in answers["deliveries"]["deliveries"] if d["eventType"] == "message.sent"} == {"delivered"}
    rotated = answers["rotateSecret"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != added["secret"] and rotated["previousSecretExpiresAt"]
    assert answers["enable"]["endpointId"] == endpoint_id and answers["enable"]["enabled"] is True
    assert answers["replay"]["queued"] >= 1
    assert answers["deleteEndpoint"] == {"endpointId": endpoint_id, "removed": True}
    assert answers["webhookEndpointsAfterDelete"]["endpoints"] == []
    # The receiver verified (Standard Webhooks) a message.sent for each of the four messages sent at once.
    sent_ids = {answers[n]["commId"] for n in ("sendWithApi", "sendWithPost")} | {r["commId"] for r in answers["sendAll"]}
    seen = {d.payload["data"]["commId"] for d in delivered if d.payload["type"] == "message.sent"}
    assert sent_ids <= seen


def test_the_licensee_list_an_admin_acting_for_a_licensee_and_a_messages_webhook_events(results):
    answers = results[0]
    assert LICENSEE in [summary["licenseeId"] for summary in answers["queryLicensees"]["licensees"]]
    assert answers["settingsAsAdmin"]["licenseeId"] == LICENSEE  # the admin key's answer for the licensee it named
    events = answers["smsEvents"]
    assert events["commId"] == answers["sendWithApi"]["commId"]
    [sent] = [e for e in events["events"] if e["type"] == "message.sent"]
    assert json.loads(sent["payload"])["id"] == sent["id"]


def test_uncommenting_an_option_and_running_typescript_ref_again_updates_the_file(project, results):
    dtos = project / "ref" / "dtos.ts"
    text = dtos.read_text()
    assert "\n//IncludeTypes: \n" in text
    dtos.write_text(text.replace("\n//IncludeTypes: \n", "\nIncludeTypes: SMSSend.*\n"))
    updated = run([str(BIN / "typescript-ref")], dtos.parent)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    text = dtos.read_text()
    assert "\nIncludeTypes: SMSSend.*\n" in text and "\n//IncludeTypes:" not in text
    classes = re.findall(r"(?m)^export (?:class|interface) (\w+)", text)
    assert classes == ["IReturn", "BaseLicenseeEnforcedServiceModel", "SMSContact", "SMSModel", "CommResponse", "SMSSend"]
    checked = run([str(BIN / "tsc"), *STRICT, "--noEmit", "ref/dtos.ts"], project)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_opt_outs_through_typed_requests(results):
    answers = results[0]
    number = "+61412700199"
    assert {k: answers["addOptOut"][k] for k in ("phoneNumber", "optedOut", "source", "reason")} == {
        "phoneNumber": number, "optedOut": True, "source": "manual", "reason": "asked by phone"}
    assert [o["phoneNumber"] for o in answers["queryOptOuts"]["optOuts"]] == [number]
    assert [(c["scope"], c["optedOut"]) for c in answers["optOutHistory"]["changes"]] == [("licensee", True)]
    assert (answers["removeOptOut"]["optedOut"], answers["removeOptOut"]["reason"]) == (False, "consent on file")
