"""Wire: decode and encode of the seed's request per second, JSON and JSV, against the standard
json module on the same payload (codec alone, and the full path into and out of the DTO)."""
from __future__ import annotations

import json
import time
from typing import Callable

from sms.wire import CommResponse, Format, SMSSend, encode, jsv, read_body, to_dto

from .harness import Row

SEED = {
    "SMSModel": {
        "From": {"Name": "Clinic", "PhoneNumber": "+61400000000", "ContactId": "00000000000000000000000000000000"},
        "To": [{"Name": "Sam Citizen", "PhoneNumber": "0412 345 678", "ContactId": "6f9619ff8b86d011b42d00c04fc964ff"}],
        "MessageBody": "Hello, Sam: your appointment is at 10am", "ReplyIsAllowed": False, "ReplyIsRequired": False,
        "Notes": "String", "LinkedObjectId": "00000000000000000000000000000000", "SuiteId": "00000000000000000000000000000000",
        "LicenseeId": "11111111111111111111111111111111",
    },
    "CreateCommunicationReferencesImmediately": False,
}
RESPONSE = CommResponse(comm_id="e1f6be64733348e3b37055b6c0fd9ebe", reference="SMS-E1F6BE64", status=True, message="Queued for 1 recipient")


def _per_second(work: Callable[[], object], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            work()
        count += 100
    return count / elapsed


def run(seconds: float) -> dict[str, float]:
    as_json, as_jsv = json.dumps(SEED), jsv.dumps(SEED)
    json_bytes, jsv_bytes = as_json.encode(), as_jsv.encode()
    return {
        "std json": _per_second(lambda: json.dumps(json.loads(as_json)), seconds),
        "jsv codec": _per_second(lambda: jsv.dumps(jsv.loads(as_jsv)), seconds),
        "json to DTO and back": _per_second(lambda: (to_dto(read_body(json_bytes, "application/json"), SMSSend),
                                                     encode(RESPONSE, Format.JSON)), seconds),
        "jsv to DTO and back": _per_second(lambda: (to_dto(read_body(jsv_bytes, "text/jsv"), SMSSend),
                                                    encode(RESPONSE, Format.JSV)), seconds),
    }


def rows(results: dict[str, float]) -> list[Row]:
    base = results["std json"]
    out = [Row("wire", f"{name} (decode+encode)", value, "per s") for name, value in results.items()]
    out += [Row("wire", f"{name} vs std json", results[name] / base, "ratio") for name in results if name != "std json"]
    return out
