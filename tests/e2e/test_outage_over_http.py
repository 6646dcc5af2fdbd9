"""Storage goes away and comes back while the dev host runs: 503s with a clear message, then normal service."""
from sms.dev import azurite
from tests.e2e.conftest import running_devhost, wait_for

LICENSEE = "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e"


def send(host, key, number):
    return host.request("POST", "/api/sms/send", {"SMSModel": {"To": [{"PhoneNumber": number}], "MessageBody": "Outage test"}}, key=key)


def test_an_outage_answers_503_and_service_resumes_when_storage_returns(tmp_path):
    storage = azurite.start(persist_to=str(tmp_path / "data"))
    ports = (storage.queue_port, storage.table_port)
    restarted = None
    try:
        with running_devhost(storage.connection_string, tmp_path / "outbox.jsonl", SMS_API_KEY_CACHE_SECONDS="0") as host:
            key = host.create_key(LICENSEE)
            status, before = send(host, key, "+61412600001")
            assert status == 200
            # Sent before the outage begins: a job the outage caught mid-dispatch is retried once its in-flight
            # visibility ends (10 minutes, as on the Functions host), which is another test's business
            # (tests/integration/test_faults.py); here, what was accepted before goes, and the outage's request is refused.
            assert wait_for(lambda: "+61412600001" in {line["to"] for line in host.sent()}, timeout=30), "\n".join(host.output[-30:])

            storage.stop()
            status, refused = send(host, key, "+61412600002")
            assert status == 503
            assert refused["responseStatus"]["errorCode"] == "ServiceUnavailable"
            assert "unavailable" in refused["responseStatus"]["message"].lower()

            restarted = azurite.start(queue_port=ports[0], table_port=ports[1], persist_to=str(tmp_path / "data"))
            status, after = send(host, key, "+61412600003")
            assert status == 200

            def both_sent():
                sent = {line["to"] for line in host.sent()}
                return {"+61412600001", "+61412600003"} <= sent

            assert wait_for(both_sent, timeout=30), "\n".join(host.output[-30:])
            assert "+61412600002" not in {line["to"] for line in host.sent()}  # refused means nothing happened
            status, missing = host.request("GET", f"/api/sms/{'0' * 31}1", key=key)
            assert status == 404
    finally:
        storage.stop()
        if restarted:
            restarted.stop()
