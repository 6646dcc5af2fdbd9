"""The OpenAPI document and the metadata page come from the code: routes from the route table, schemas from the DTOs."""
import html
import json
import re
from pathlib import Path

from sms.domain.routing import MAX_PROVIDERS_PER_RULE, MAX_RULES
from sms.entrypoints import metadata, openapi
from sms.entrypoints.operations import OPERATIONS
from sms.entrypoints.routes import ROUTES
from sms.wire import CommResponse, SMSSend, jsv, to_dto
from sms.wire.dto import EstimateResponse


def test_every_api_route_is_documented_with_both_media_types():
    document = openapi.document()
    documented = {path: ops for path, ops in document["paths"].items()}
    for route in ROUTES:
        if route.kind in ("openapi", "metadata", "types", "metadata_page", "health", "receipts_acs", "receipts_twilio", "inbound_twilio",
                          "console"):
            continue  # documentation itself, vendors' callbacks and the console's files: not the client API
        operation = documented["/" + route.path][route.working_methods[0].lower()]
        assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/jsv"}
        if route.kind not in ("status", "cancel", "replies", "list", "usage", "providers", "webhooks_list", "webhooks_remove",
                              "webhooks_rotate_secret", "webhooks_enable", "webhooks_deliveries", "routes_show", "routes_clear",
                                  "guard_show", "guard_clear", "settings_show", "keys_current", "keys_list", "keys_revoke",
                                  "optouts_list", "optouts_history", "optouts_remove",  # opt-outs: the query string
                                  "licensees_list", "events"):
            assert {"application/json", "text/jsv", "application/x-www-form-urlencoded"} <= set(operation["requestBody"]["content"])
        assert "400" in operation["responses"] and "401" in operation["responses"]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "basic"}


def test_schemas_are_the_models_own():
    schemas = openapi.document()["components"]["schemas"]
    assert set(schemas["SMSSend"]["properties"]) == {"SMSModel", "CreateCommunicationReferencesImmediately"}
    # The seed's four fields first, then what the message costs (issue 27): its ServiceStack clients ignore the others.
    assert list(schemas["CommResponse"]["properties"]) == ["commId", "reference", "status", "message", "encoding", "segments",
                                                           "recipients", "blocked", "estimatedCost", "currency"]
    assert set(schemas["EstimateResponse"]["properties"]) == {"encoding", "segments", "recipients", "blocked", "estimatedCost",
                                                              "currency", "lines"}
    model = SMSSend.model_fields["sms_model"].annotation.__args__[0]
    assert set(schemas["SMSModel"]["properties"]) == {f.validation_alias for f in model.model_fields.values()}


def test_the_documented_lengths_are_the_ones_validation_enforces():
    from sms.domain.validation import MAX_NAME_CHARS, MAX_NOTES_CHARS, MAX_SEGMENTS_OPTION

    schemas = openapi.document()["components"]["schemas"]
    assert {"type": "string", "maxLength": MAX_NAME_CHARS} in schemas["SMSContact"]["properties"]["Name"]["anyOf"]
    assert {"type": "string", "maxLength": MAX_NOTES_CHARS} in schemas["SMSModel"]["properties"]["Notes"]["anyOf"]
    assert {"type": "integer", "minimum": 1, "maximum": MAX_SEGMENTS_OPTION} in schemas["SMSModel"]["properties"]["MaxSegments"]["anyOf"]


def test_the_commid_pattern_in_openapi_is_the_routes_own():
    status = openapi.document()["paths"]["/api/sms/{commId}"]["get"]
    [comm_id] = [p for p in status["parameters"] if p["name"] == "commId"]
    assert re.fullmatch(comm_id["schema"]["pattern"], "E1F6BE64-7333-48E3-B370-55B6C0FD9EBE.jsv")
    assert not re.fullmatch(comm_id["schema"]["pattern"], "send")


def test_the_metadata_samples_decode_back_into_the_dtos():
    page = metadata.page().decode()
    samples = [html.unescape(s) for s in re.findall(r"<pre>Content-Type: [^\n]+\n\n(.*?)</pre>", page, re.S)]
    request_json, request_jsv, response_json, response_jsv = samples[:4]
    assert to_dto(json.loads(request_json), SMSSend) == to_dto(jsv.loads(request_jsv), SMSSend) == metadata._SAMPLE_REQUEST
    assert CommResponse.model_validate(json.loads(response_json)) == CommResponse.model_validate(jsv.loads(response_jsv))
    for route in ROUTES:
        if route.kind in ("send", "send_now", "batch", "reply", "estimate", "status", "cancel"):
            assert f"/{route.path}" in page
    # What a send costs (issue 27): on the send's sample answer, and the estimate's own sample.
    assert json.loads(response_json)["estimatedCost"] == "0.0525"
    estimate_json, estimate_jsv = samples[-2:]
    assert EstimateResponse.model_validate(json.loads(estimate_json)) == metadata._SAMPLE_ESTIMATE
    assert EstimateResponse.model_validate(jsv.loads(estimate_jsv)) == metadata._SAMPLE_ESTIMATE
    assert "<td>DELETE</td><td>/api/sms/{commId}</td><td>cancel</td>" in page


def test_the_listing_documents_every_query_parameter_it_reads():
    from sms.wire.mapping import LIST_PARAMETERS

    operation = openapi.document()["paths"]["/api/sms"]["get"]
    documented = [p["name"] for p in operation["parameters"] if p["in"] == "query" and p["name"] != "format"]
    assert documented == [*LIST_PARAMETERS, "licenseeId"]  # the licensee an admin key acts for: read by api._acting_for
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/MessageList"}


def test_the_webhook_routes_are_documented_with_their_methods_and_the_secret_only_where_it_is_shown():
    paths = openapi.document()["paths"]
    assert set(paths["/api/webhooks"]) == {"get", "post"}
    assert set(paths["/api/webhooks/{endpointId}"]) == {"delete"}
    assert set(paths["/api/webhooks/{endpointId}/rotate-secret"]) == set(paths["/api/webhooks/{endpointId}/enable"]) == {"post"}
    [endpoint_id] = [p for p in paths["/api/webhooks/{endpointId}"]["delete"]["parameters"] if p["name"] == "endpointId"]
    assert re.fullmatch(endpoint_id["schema"]["pattern"], "E1F6BE64733348E3B37055B6C0FD9EBE")
    assert not re.fullmatch(endpoint_id["schema"]["pattern"], "e1f6be64-7333-48e3-b370-55b6c0fd9ebe")
    schemas = openapi.document()["components"]["schemas"]
    assert set(schemas["WebhookEndpointRequest"]["properties"]) == {"Url", "EventTypes"}
    assert "secret" in schemas["WebhookEndpointState"]["properties"]
    assert paths["/api/webhooks"]["post"]["responses"]["409"]["description"].startswith("The licensee already has 5 webhook endpoints")
    page = metadata.page().decode()
    assert "<td>DELETE</td><td>/api/webhooks/{endpointId}</td>" in page and "WebhookEndpointRequest" in page


def test_the_routing_table_routes_are_documented_with_their_methods_bodies_and_answers():
    paths = openapi.document()["paths"]
    assert set(paths["/api/routes"]) == {"get", "put", "delete"}
    state = {"$ref": "#/components/schemas/RoutingTableState"}
    for method in ("get", "put", "delete"):
        assert paths["/api/routes"][method]["responses"]["200"]["content"]["application/json"]["schema"] == state
    put = paths["/api/routes"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RoutingTableRequest"}
    assert "Rules" in put["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert {"400", "401", "409", "413", "415", "429", "503"} <= set(put["responses"])
    assert "each problem" in put["responses"]["400"]["description"]
    schemas = openapi.document()["components"]["schemas"]
    assert set(schemas["RouteRule-Input"]["properties"]) == {"Match", "Providers", "Sender"}  # as JSV names them; JSON in any case
    assert set(schemas["RouteRule-Output"]["properties"]) == {"match", "providers", "sender"}
    assert "additionalProperties" not in schemas["RouteRule-Input"]  # names in any case are the same field
    assert schemas["RoutingTableRequest"]["properties"]["Rules"]["anyOf"][0]["maxItems"] == MAX_RULES
    assert schemas["RouteRule-Input"]["properties"]["Providers"]["anyOf"][0]["maxItems"] == MAX_PROVIDERS_PER_RULE
    assert schemas["RoutingTableState"]["properties"]["source"]["enum"] == ["licensee", "default"]
    page = metadata.page().decode()
    assert "<td>PUT</td><td>/api/routes</td>" in page and "<h3>RoutingTableRequest</h3>" in page


def test_the_delivery_log_and_replay_are_documented_with_what_they_read_and_answer():
    from sms.wire.mapping import DELIVERY_LOG_PARAMETERS

    paths = openapi.document()["paths"]
    assert set(paths["/api/webhooks/{endpointId}/deliveries"]) == {"get"} and set(paths["/api/webhooks/{endpointId}/replay"]) == {"post"}
    log = paths["/api/webhooks/{endpointId}/deliveries"]["get"]
    queried = [p["name"] for p in log["parameters"] if p["in"] == "query" and p["name"] != "format"]
    assert queried == [*DELIVERY_LOG_PARAMETERS, "licenseeId"]
    assert log["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/WebhookDeliveryList"}
    assert "404" in log["responses"] and "endpointId" in [p["name"] for p in log["parameters"] if p["in"] == "path"]
    replay = paths["/api/webhooks/{endpointId}/replay"]["post"]
    assert replay["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/WebhookReplayRequest"}
    assert replay["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/WebhookReplayResponse"}
    assert "no event with this EventId" in replay["responses"]["404"]["description"]
    schemas = openapi.document()["components"]["schemas"]
    form = replay["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert set(schemas["WebhookReplayRequest"]["properties"]) == set(form) == {"EventId", "From", "To", "ContinuationToken"}
    assert set(schemas["WebhookReplayResponse"]["properties"]) == {"queued", "eventId", "continuationToken"}
    assert set(schemas["WebhookDeliveryAttempt"]["properties"]) == {"at", "eventId", "eventType", "attempt", "outcome", "statusCode",
                                                                    "latencyMs", "error", "responseBody", "replay"}
    page = metadata.page().decode()
    assert "<td>GET</td><td>/api/webhooks/{endpointId}/deliveries</td>" in page
    assert "<td>POST</td><td>/api/webhooks/{endpointId}/replay</td>" in page
    for dto in ("WebhookDeliveryList", "WebhookDeliveryAttempt", "WebhookReplayRequest", "WebhookReplayResponse"):
        assert f"<h3>{dto}</h3>" in page


def test_the_scheduling_properties_are_documented_with_their_descriptions_and_formats():
    from sms.wire import SMSModel

    properties = openapi.document()["components"]["schemas"]["SMSModel"]["properties"]
    page = metadata.page().decode()
    for field in SMSModel.EXTENSIONS:
        alias = SMSModel.model_fields[field].validation_alias
        assert properties[alias]["description"] == SMSModel.model_fields[field].description
        assert f"<td>{alias}</td>" in page and html.escape(SMSModel.model_fields[field].description) in page
    assert {"type": "string", "format": "date-time"} in properties["SendAt"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in properties["ValidUntil"]["anyOf"]
    assert {"type": "integer", "minimum": 1} in properties["ValidityPeriod"]["anyOf"]
    assert {"type": "boolean"} in properties["Urgent"]["anyOf"]


def test_cancel_is_documented_as_delete_on_the_status_routes_path_with_its_answer():
    from sms.entrypoints.routes import GUID_WITH_SUFFIX_PATTERN

    paths = openapi.document()["paths"]
    assert set(paths["/api/sms/{commId}"]) == {"get", "delete"}
    cancel = paths["/api/sms/{commId}"]["delete"]
    assert cancel["operationId"] == "sms_cancel" and "requestBody" not in cancel
    assert cancel["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CancelResponse"}
    assert {"400", "401", "403", "404", "405", "409", "429", "503"} == set(cancel["responses"]) - {"200"}  # 403: a read-only key
    [comm_id] = [p for p in cancel["parameters"] if p["name"] == "commId"]
    assert comm_id["schema"]["pattern"] == GUID_WITH_SUFFIX_PATTERN
    schemas = openapi.document()["components"]["schemas"]
    assert set(schemas["CancelResponse"]["properties"]) == {"commId", "cancelled", "unaffected"}
    assert "<h3>CancelResponse</h3>" in metadata.page().decode()


def test_every_status_is_documented_where_answers_carry_one():
    from sms.domain.model import Status
    from sms.wire.mapping import LISTED_STATUSES

    every = [s.value for s in Status]
    assert {"scheduled", "expired", "cancelled"} <= set(every) and set(LISTED_STATUSES) == {*every, "partially_sent"}
    document = openapi.document()
    schemas = document["components"]["schemas"]
    assert schemas["RecipientState"]["properties"]["status"]["enum"] == every
    assert schemas["RecipientEvent"]["properties"]["status"]["enum"] == every
    assert schemas["MessageState"]["properties"]["status"]["enum"] == list(LISTED_STATUSES)
    [listed] = [p for p in document["paths"]["/api/sms"]["get"]["parameters"] if p["name"] == "status"]
    assert listed["schema"]["enum"] == list(LISTED_STATUSES)
    for status in LISTED_STATUSES:
        assert status in schemas["MessageState"]["properties"]["status"]["description"]
    assert sorted(metadata.STATUS_MEANINGS) == sorted(LISTED_STATUSES)
    page = metadata.page().decode()
    assert all(f"<tr><td>{status}</td>" in page for status in LISTED_STATUSES)


def test_the_scheduling_samples_on_the_metadata_page_decode_back_into_the_dtos():
    from sms.wire.dto import CancelResponse

    page = metadata.page().decode()
    samples = [html.unescape(s) for s in re.findall(r"<pre>Content-Type: [^\n]+\n\n(.*?)</pre>", page, re.S)]
    request_json, request_jsv, response_json, response_jsv, cancel_json, cancel_jsv = samples[6:12]
    assert to_dto(json.loads(request_json), SMSSend) == to_dto(jsv.loads(request_jsv), SMSSend) == metadata._SAMPLE_SCHEDULED
    assert metadata._SAMPLE_SCHEDULED.sms_model.send_at and metadata._SAMPLE_SCHEDULED.sms_model.validity_period
    assert CommResponse.model_validate(json.loads(response_json)) == CommResponse.model_validate(jsv.loads(response_jsv))
    assert CancelResponse.model_validate(json.loads(cancel_json)) == CancelResponse.model_validate(jsv.loads(cancel_jsv)) \
        == metadata._SAMPLE_CANCEL


def test_the_readmes_sample_answers_are_written_as_the_gateway_writes_them():
    """Issue 25: README's JSON samples were spaced where the answers are compact. Every ```json block but the sample
    request body (what a client sends may be spaced) reads as the gateway's own answer would."""
    from sms.config import PROJECT_ROOT

    blocks = re.findall(r"^```json\n(.*?)\n```$", (PROJECT_ROOT / "README.md").read_text(), re.MULTILINE | re.DOTALL)
    answers = [block for block in blocks if "smsModel" not in json.loads(block)]
    assert len(answers) >= 10
    for block in answers:
        assert block == json.dumps(json.loads(block), separators=(",", ":"), ensure_ascii=False), block[:80]


def test_the_console_doc_pictures_every_page_the_console_has_and_readme_opens_with_it():
    """docs/console.md shows every page of the console's navigation, from pictures that are in the repository (taken by
    tests/browser/test_console_pages.py, `make console-screenshots`); README's first screen links it with a picture."""
    root = Path(__file__).resolve().parents[2]
    app = (root / "sms/operator_console/app.js").read_text()
    listed = re.findall(r'\["(\w+)", "[^"]+", \w+, true, (?:true|false)\]', app)
    assert listed == ["messages", "send", "usage", "webhooks", "optouts", "settings", "keys"]
    doc = (root / "docs/console.md").read_text()
    pictures = re.findall(r"!\[[^\]]+\]\((console/[\w-]+\.png)\)", doc)
    for page in [*listed, "message", "webhook-deliveries", "sign-in"]:
        assert f"console/{page}.png" in pictures, page
    for picture in pictures:
        assert (root / "docs" / picture).stat().st_size > 10_000, picture
    first_screen = (root / "README.md").read_text()[:2000]
    assert "](docs/console.md)" in first_screen and "(docs/console/messages.png)" in first_screen


def test_every_operation_has_a_row_in_readmes_typed_clients_table():
    """A new operation cannot reach /types and /metadata without its row in README."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("| Operation | Verb and route | Answer |"):]
    table = table[:table.index("\n\n")]
    named = set(re.findall(r"`(\w+)`", "\n".join(line.split("|")[1] for line in table.splitlines()[2:])))
    assert named == {operation.name for operation in OPERATIONS}
