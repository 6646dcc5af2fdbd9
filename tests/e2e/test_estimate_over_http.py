"""Cost before sending over HTTP (issue 27): the dev host with a price table file (SMS_PRICES) the test writes and a
deployment allowing AU and US. POST /api/sms/estimate answers without storing anything; a send answers its cost, sends
the smart-encoded body, and its retry under the same Idempotency-Key answers the same from Table Storage."""
import asyncio
import uuid

from tests.e2e.conftest import running_devhost, wait_for

AU, US, GB = "+61412700100", "+14155552671", "+447400123456"
CURLY = "Don\u2019t forget \u2014 your appointment is at 10\u00a0am\u2026"


async def test_estimate_and_a_send_answer_the_cost_by_the_price_table(own_emulator, tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text("country,provider,price,currency\n# per segment\nAU,*,0.0525,AUD\nUS,*,0.011,AUD\n")
    env = {"SMS_PRICES": str(prices), "SMS_GUARD_HOME_COUNTRIES": "AU,US"}
    with running_devhost(own_emulator.connection_string, tmp_path / "outbox.jsonl", **env) as host:
        licensee = uuid.uuid4().hex
        key = await asyncio.to_thread(host.create_key, licensee)
        model = {"to": [{"phoneNumber": AU}, {"phoneNumber": US}, {"phoneNumber": GB}], "messageBody": CURLY, "smartEncoding": True}

        status, estimate = await asyncio.to_thread(host.request, "POST", "/api/sms/estimate", {"smsModel": model}, key)
        assert status == 200, estimate
        lines = estimate.pop("lines")
        assert estimate == {"encoding": "GSM-7", "segments": 1, "recipients": 2, "blocked": 1, "estimatedCost": "0.0635",
                            "currency": "AUD"}
        assert [(line["country"], line.get("cost"), line["action"]) for line in lines] == [
            ("AU", "0.0525", "allow"), ("US", "0.011", "allow"), ("GB", None, "block")]
        assert lines[2]["reason"] == "country GB is blocked by this licensee's guard (otherCountries)"
        # Without smart encoding the curly quote, dash, no-break space and ellipsis make it UCS-2.
        _, plain = await asyncio.to_thread(host.request, "POST", "/api/sms/estimate", {**model, "smartEncoding": False}, key)
        assert (plain["encoding"], plain["segments"]) == ("UCS-2", 1)
        # Nothing was stored: the licensee has no messages.
        _, listed = await asyncio.to_thread(host.request, "GET", "/api/sms", None, key)
        assert listed["messages"] == []

        request = {"smsModel": {**model, "maxPrice": "0.05"}}  # AU costs 0.0525: over it, blocked too
        headers = {"Idempotency-Key": "e2e-cost"}
        status, sent = await asyncio.to_thread(host.request, "POST", "/api/sms/send", request, key, headers)
        assert status == 200, sent
        assert {k: sent[k] for k in ("message", "encoding", "segments", "recipients", "blocked", "estimatedCost", "currency")} == {
            "message": "Queued for 3 recipients", "encoding": "GSM-7", "segments": 1, "recipients": 1, "blocked": 2,
            "estimatedCost": "0.011", "currency": "AUD"}
        status, again = await asyncio.to_thread(host.request, "POST", "/api/sms/send", request, key, headers)
        assert status == 200 and again == sent  # read back from the message's header row
        # What goes to the provider is the smart-encoded body.
        wait_for(lambda: any(s.get("to") == US for s in host.sent()))
        [out] = [s for s in host.sent() if s.get("to") == US]
        assert out["body"] == "Don't forget - your appointment is at 10 am..."

        status, refused = await asyncio.to_thread(host.request, "POST", "/api/sms/estimate",
                                                  {"smsModel": {**model, "maxPrice": "1e400x", "maxSegments": 0}}, key)
        assert status == 400
        assert sorted(e["fieldName"] for e in refused["responseStatus"]["errors"]) == ["SMSModel.MaxPrice", "SMSModel.MaxSegments"]
