"""/api/routes over HTTP (issue 26), through the dev host: a licensee sets, reads and clears its routing
table with its key; another licensee's key sees only its own; an operator's `python -m sms routes` (another
process) sees and changes the same table at once; a body that is no table is a 400 naming each problem."""
import json
import subprocess
import sys
import uuid

from sms.config import PROJECT_ROOT

DEFAULT = {"source": "default", "rules": [{"match": "*", "providers": ["console"]}]}
RULES = [{"match": "AU", "providers": ["console"], "sender": "+61400000000"}, {"match": "+1", "providers": ["console"], "sender": "Clinic"},
         {"match": "*", "providers": ["console"]}]


def cli(devhost, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sms", *argv], cwd=PROJECT_ROOT, env=devhost.env, capture_output=True, text=True,
                          timeout=60)


def test_a_licensee_sets_reads_and_clears_its_table_and_no_other_licensee_sees_it(devhost):
    mine, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    key, other_key = devhost.create_key(mine), devhost.create_key(theirs)
    assert devhost.request("GET", "/api/routes", key=key) == (200, DEFAULT)

    assert devhost.request("PUT", "/api/routes", {"rules": RULES}, key=key) == (200, {"source": "licensee", "rules": RULES})
    assert devhost.request("GET", "/api/routes", key=key) == (200, {"source": "licensee", "rules": RULES})
    assert devhost.request("GET", "/api/routes", key=other_key) == (200, DEFAULT)
    assert devhost.request("DELETE", "/api/routes", key=other_key) == (200, DEFAULT)  # clears its own (none), not mine
    assert devhost.request("GET", "/api/routes", key=key)[1]["source"] == "licensee"

    shown = cli(devhost, "routes", "show", "--licensee", mine, "--json")  # the operator, in another process, at once
    assert shown.returncode == 0 and json.loads(shown.stdout) == RULES

    assert devhost.request("DELETE", "/api/routes", key=key) == (200, DEFAULT)
    assert devhost.request("GET", "/api/routes", key=key) == (200, DEFAULT)
    assert devhost.request("GET", "/api/routes")[0] == 401


def test_an_operator_s_table_is_what_the_licensee_reads(devhost, tmp_path):
    licensee = uuid.uuid4().hex
    key = devhost.create_key(licensee)
    path = tmp_path / "table.json"
    path.write_text(json.dumps(RULES[1:]))
    done = cli(devhost, "routes", "set", "--licensee", licensee, "--file", str(path))
    assert done.returncode == 0, done.stderr
    assert devhost.request("GET", "/api/routes", key=key) == (200, {"source": "licensee", "rules": RULES[1:]})
    refused = cli(devhost, "routes", "set", "--licensee", licensee, "--file", str(tmp_path / "none.json"))
    assert refused.returncode == 2 and "error: --file: cannot read" in refused.stderr


def test_a_body_that_is_no_table_is_a_400_naming_each_problem(devhost):
    key = devhost.create_key(uuid.uuid4().hex)
    status, body = devhost.request("PUT", "/api/routes", {"rules": [{"match": "XX", "providers": ["twilio"]},
                                                                    {"match": "*", "providers": ["console"], "sender": "+0"}]}, key=key)
    assert status == 400
    errors = {e["fieldName"]: e["errorCode"] for e in body["responseStatus"]["errors"]}
    assert errors == {"Rules[0].Match": "InvalidValue", "Rules[0].Providers[0]": "UnknownProvider", "Rules[1].Sender": "InvalidValue"}
    status, body = devhost.request("PUT", "/api/routes", b"[" * 100_000, key=key)
    assert status == 400 and [e["errorCode"] for e in body["responseStatus"]["errors"]] == ["SerializationException"]
    assert devhost.request("GET", "/api/routes", key=key) == (200, DEFAULT)
