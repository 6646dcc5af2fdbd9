"""The model every /types file is rendered from, the options header ServiceStack's tools update files by, and the
/types and metadata-page endpoints (issue 28). The languages' own texts: test_native_types_{typescript,python,csharp}.py."""
import json
from datetime import datetime, timezone

import azure.functions as func
import pytest
from pydantic import Field

from sms.domain.errors import ValidationFailed
from sms.domain.guard import MAX_CAP
from sms.entrypoints.native_types import model
from sms.entrypoints.native_types.model import NAMESPACE, metadata_types
from sms.entrypoints.native_types.names import camel_case, snake_case
from sms.entrypoints.native_types.options import HEADER_OPTIONS, Language, header, parse
from sms.entrypoints.operations import OPERATIONS
from sms.wire import dto

NOW = datetime(2026, 12, 6, 22, 40, 1, tzinfo=timezone.utc)


async def get(gw, function: str, url: str, params: dict | None = None, headers: dict | None = None) -> func.HttpResponse:
    request = func.HttpRequest("GET", url, params=params or {}, headers=headers or {}, body=b"")
    return await gw.functions[function](request)


def every_type(meta: dict) -> list[dict]:
    return [*meta["types"], *(t for op in meta["operations"] for t in (op["request"], op.get("response")) if t)]


# -- the model -----------------------------------------------------------------------------------------------


def test_every_operation_is_described_with_its_routes_verb_and_return_type():
    meta = metadata_types("http://h", parse({}))
    described = {op["request"]["name"]: op for op in meta["operations"]}
    assert list(described) == [op.name for op in OPERATIONS]
    status = described["GetSmsStatus"]
    assert status["routes"] == [{"path": "/api/sms/{commId}", "verbs": "GET"}] and status["method"] == "GET"
    assert status["returnType"] == {"name": "MessageState", "namespace": NAMESPACE} and status["response"]["name"] == "MessageState"
    assert status["request"]["implements"] == [{"name": "IGet", "namespace": "ServiceStack"}]
    send = described["SMSSend"]
    assert {r["path"] for r in send["routes"]} == {"/api/sendmessage", "/api/sendmessage/immediate", "/api/send", "/api/sms/send",
                                                   "/api/send/immediate", "/api/sms/send/immediate"}
    assert send["request"]["implements"] == [] and send["request"]["description"] == (
        "Saves the specified SMS and sends it for background processing")  # the seed's, without a verb marker
    assert described["SetGuard"]["method"] == "PUT" and described["CancelSms"]["method"] == "DELETE"
    assert described["ReplayWebhookEvents"]["routes"] == [{"path": "/api/webhooks/{endpointId}/replay", "verbs": "POST"}]


def test_the_seeds_types_keep_the_seeds_shape():
    meta = metadata_types("http://h", parse({}))
    types = {t["name"]: t for t in every_type(meta)}
    assert types["SMSModel"]["inherits"] == {"name": "BaseLicenseeEnforcedServiceModel", "namespace": NAMESPACE}
    assert types["BaseLicenseeEnforcedServiceModel"]["properties"] == [
        {"name": "LicenseeId", "type": "Guid", "namespace": "System", "isValueType": True}]
    props = {p["name"]: p for p in types["SMSModel"]["properties"]}
    assert props["To"] == {"name": "To", "type": "List`1", "namespace": "System.Collections.Generic", "genericArgs": ["SMSContact"]}
    assert props["ReplyIsAllowed"]["type"] == "Boolean" and props["LinkedObjectId"]["type"] == "Guid"
    assert props["ValidityPeriod"]["type"] == "Nullable`1" and props["ValidityPeriod"]["genericArgs"] == ["Int32"]
    assert [p["name"] for p in types["CommResponse"]["properties"]][:4] == ["CommId", "Reference", "Status", "Message"]
    assert types["CommResponse"]["properties"][0]["type"] == "Guid" and "inherits" not in types["CommResponse"]


def test_every_field_of_every_dto_is_in_the_model_under_names_that_camel_case_to_its_json_name():
    """The TypeScript DTOs and the metadata pages name a property by ServiceStack's camelCase of its .NET name; the
    gateway writes pydantic's. They agree for every field, so a typed client reads what the gateway writes."""
    meta = metadata_types("http://h", parse({}))
    described = {t["name"]: t for t in every_type(meta)}
    models = {m.__name__: m for m in vars(dto).values() if isinstance(m, type) and issubclass(m, dto.WireModel)}
    for name, described_type in described.items():
        fields = dict(models[name].model_fields) if name in models else dict(
            next(op.request for op in OPERATIONS if op.name == name).model_fields)
        chain, current = [], described_type
        while current:
            chain += current["properties"]
            current = described.get(current.get("inherits", {}).get("name"))
        assert sorted(p["name"] for p in chain) == sorted(model.dotnet_name(n, f) for n, f in fields.items()), name
        for field_name, field in fields.items():
            assert camel_case(model.dotnet_name(field_name, field)) == model.json_name(field_name, field), (name, field_name)


def test_a_field_added_to_a_dto_appears_by_itself(monkeypatch):
    class Widened(dto.UsageDay):
        carrier_fees: int | None = Field(default=None, description="What the carriers charged")

    fields = {p["name"]: p for t in metadata_types("http://h", parse({}))["types"] if t["name"] == "UsageDay" for p in t["properties"]}
    assert "CarrierFees" not in fields
    monkeypatch.setattr(dto.UsageResponse, "model_fields", {"days": dto.UsageResponse.model_fields["days"]})
    widened = model._type(Widened)
    assert widened["properties"] == [{"name": "CarrierFees", "type": "Nullable`1", "namespace": "System", "genericArgs": ["Int32"],
                                      "isValueType": True, "description": "What the carriers charged"}]
    assert widened["inherits"] == {"name": "UsageDay", "namespace": NAMESPACE}


def test_include_types_takes_a_type_its_closure_or_a_tag_and_exclude_types_removes():
    names = lambda meta: ([t["name"] for t in meta["types"]], [op["request"]["name"] for op in meta["operations"]])  # noqa: E731
    assert names(metadata_types("h", parse({"IncludeTypes": "SMSSend.*"}))) == (
        ["BaseLicenseeEnforcedServiceModel", "SMSContact", "SMSModel"], ["SMSSend"])
    exact = metadata_types("h", parse({"IncludeTypes": "GetSmsStatus"}))
    assert names(exact) == ([], ["GetSmsStatus"]) and exact["operations"][0]["response"]["name"] == "MessageState"
    tagged = names(metadata_types("h", parse({"includetypes": "{guard}"})))
    assert tagged[1] == ["GetGuard", "SetGuard", "ResetGuard"] and "GuardCaps" in tagged[0] and "SMSModel" not in tagged[0]
    assert "RouteRule" not in names(metadata_types("h", parse({"ExcludeTypes": "RouteRule"})))[0]
    assert names(metadata_types("h", parse({"ExcludeTypes": "services"})))[1] == []
    only_ops = metadata_types("h", parse({"ExcludeTypes": "types"}))
    assert only_ops["types"] == [] and len(only_ops["operations"]) == len(OPERATIONS)
    assert names(metadata_types("h", parse({"IncludeTypes": "NoSuchType,Nope.*"}))) == ([], [])


def declared_and_needed(meta: dict) -> tuple[set[str], set[str]]:
    """The DTO names a model declares (as types, requests and responses) and those its declarations name."""
    described = every_type(meta)
    declared = {t["name"] for t in described}
    needed = {n for t in described for n in (t.get("inherits", {}).get("name"),
                                             *(a for p in t["properties"] for a in (p["type"], *p.get("genericArgs", []))))}
    return declared, {n for n in needed if n in {t["name"] for t in every_type(metadata_types("h", parse({})))}}


@pytest.mark.parametrize("item", [f"{op.name}.*" for op in OPERATIONS] + ["MessageState.*", "WebhookEndpointState"])
def test_include_types_declares_every_type_the_included_ones_need(item):
    """IncludeTypes=X.* is the file of one operation (the metadata page links it): self-contained in every language. A
    type that is another operation's response (GetWebhookEndpoints' list holds AddWebhookEndpoint's WebhookEndpointState)
    is declared as a type when that operation is not included, as ServiceStack's RemoveIgnoredTypes does."""
    meta = metadata_types("h", parse({"IncludeTypes": item}))
    declared, needed = declared_and_needed(meta)
    assert item.removesuffix(".*") in declared and needed <= declared, needed - declared
    assert len([t["name"] for t in every_type(meta)]) == len(declared)  # each once

def test_add_response_status_gives_every_response_servicestacks_response_status():
    meta = metadata_types("h", parse({"AddResponseStatus": "true", "IncludeTypes": "GetUsage.*"}))
    [usage] = meta["operations"]
    assert usage["response"]["properties"][-1] == {"name": "ResponseStatus", "type": "ResponseStatus", "namespace": "ServiceStack"}
    assert {t["name"]: t["namespace"] for t in meta["types"] if t["namespace"] == "ServiceStack"} == {
        "ResponseError": "ServiceStack", "ResponseStatus": "ServiceStack"}
    without = metadata_types("h", parse({"IncludeTypes": "GetUsage.*"}))
    assert "ResponseStatus" not in json.dumps([without["types"], without["operations"]])


async def test_a_segment_cap_is_declared_as_wide_as_a_licensee_may_set_it(gw):
    """PUT /api/guard takes a segment cap up to MAX_CAP (10**12) and every guard answer holds it: a C# client reads it
    into the declared type, and an int (Int32) cannot hold it, so the caps are longs (Int64)."""
    caps = {"dailySegments": MAX_CAP, "monthlySegments": MAX_CAP}
    request = func.HttpRequest("PUT", "http://h/api/guard", headers={"Authorization": f"Bearer {gw.key}"},
                               body=json.dumps({"caps": caps}).encode())
    answer = await gw.functions["guard_set"](request)
    assert answer.status_code == 200 and json.loads(answer.get_body())["caps"] == caps and MAX_CAP > 2**31 - 1
    [declared] = [t for t in metadata_types("h", parse({}))["types"] if t["name"] == "GuardCaps"]
    assert {p["name"]: p.get("genericArgs") for p in declared["properties"] if p["name"].endswith("Segments")} == {
        "DailySegments": ["Int64"], "MonthlySegments": ["Int64"]}

# -- options and the header ------------------------------------------------------------------------------------


def test_options_are_read_in_any_case_with_lists_in_either_form_and_unknown_keys_ignored():
    options = parse({"includetypes": " SMSSend.* , CommResponse ", "EXCLUDETYPES": "[A,B]", "AddResponseStatus": "TRUE",
                     "MakePartial": "0", "Unknown": "x\n*/", "GlobalNamespace": ""})
    assert options.names("IncludeTypes") == ("SMSSend.*", "CommResponse") and options.names("ExcludeTypes") == ("A", "B")
    assert options.flag("AddResponseStatus", False) is True and options.flag("MakePartial", True) is False
    assert set(options.given) == {"IncludeTypes", "ExcludeTypes", "AddResponseStatus", "MakePartial"}


@pytest.mark.parametrize("name, value", [
    ("AddImplicitVersion", "abc"), ("AddNamespaces", "a;b"), ("GlobalNamespace", "My\nclass X {}"), ("GlobalNamespace", "a b"),
    ("DataClass", "frozen=True)\nimport os  #"), ("IncludeTypes", "SMSSend.* */ alert(1) /*"), ("DefaultImports", 'x"; import y'),
    ("MakePartial", "nonsense"), ("BaseUrl", "javascript:alert(1)"), ("ExcludeTypes", "\x00"), ("DataClassJson", "x" * 2001),
    # C# writes it inside a string literal ([assembly: ContractNamespace("...")] with AddDataContractAttributes)
    ("AddDefaultXmlNamespace", 'urn:x")] public class Injected {} //'), ("AddDefaultXmlNamespace", "no uri"),
])
async def test_an_option_value_that_could_break_the_file_is_a_400_naming_it(gw, name, value):
    """Option values are written into the header and into code (a namespace, an import, a decorator's arguments)."""
    with pytest.raises(ValidationFailed) as refused:
        parse({name: value})
    assert [e.field_name for e in refused.value.field_errors] == [name]
    response = await get(gw, "types_python", "http://h/types/python", {"IncludeTypes": "SMSSend.*", name: value})
    assert response.status_code == 400 and b"Options:" not in response.get_body()
    assert json.loads(response.get_body())["responseStatus"]["errors"][0]["fieldName"] == name


def test_the_header_lists_each_languages_options_commented_unless_given_as_servicestack_writes_it():
    given = parse({"IncludeTypes": "SMSSend.*", "AddResponseStatus": "true"})
    text = header(Language.TYPESCRIPT, given, "https://sms.example.org", NOW)
    assert text == """/* Options:
Date: 2026-12-06 22:40:01
Version: 8.80
Tip: To override a DTO option, remove "//" prefix before updating
BaseUrl: https://sms.example.org

//GlobalNamespace: 
//MakePropertiesOptional: False
//AddServiceStackTypes: True
AddResponseStatus: True
//AddImplicitVersion: 
//AddDescriptionAsComments: True
IncludeTypes: SMSSend.*
//ExcludeTypes: 
//DefaultImports: 
*/

"""
    python = header(Language.PYTHON, parse({}), "http://h", NOW)
    assert python.startswith('""" Options:\n') and python.endswith('#DataClassJson: \n"""\n\n') and '"#" prefix' in python
    csharp = header(Language.CSHARP, parse({}), "http://h", NOW).splitlines()
    assert csharp[6:] == [f"//{name}: {default}" for name, default in HEADER_OPTIONS[Language.CSHARP]] + ["*/", ""]
    assert "//AddNullableAnnotations: False" in csharp  # v8.8's default (10.x prints True)
    assert header(Language.CSHARP, parse({"withoutoptions": "true"}), "http://h", NOW) == ""


def test_an_update_sends_back_what_the_header_says_and_gets_the_same_header():
    """The tools send every uncommented option line after BaseUrl as a query parameter (servicestack-cli
    updateReference): reading the header as they do gives back the options that wrote it."""
    first = header(Language.PYTHON, parse({"IncludeTypes": "{sms},GetUsage.*", "DataClass": "frozen=True"}), "http://h", NOW)
    lines = first.splitlines()
    options = lines[lines.index("BaseUrl: http://h") + 1:lines.index('"""')]
    sent = dict(line.split(":", 1) for line in options if line and not line.startswith("#"))
    assert {k.strip(): v.strip() for k, v in sent.items()} == {"IncludeTypes": "{sms},GetUsage.*", "DataClass": "frozen=True"}
    assert header(Language.PYTHON, parse(sent), "http://h", NOW) == first


def test_names_follow_servicestacks_rules():
    assert [camel_case(n) for n in ("SMSModel", "ID", "From", "CommId", "URLs", "")] == ["smsModel", "id", "from", "commId", "urLs", ""]
    assert [snake_case(n) for n in ("SMSModel", "CreateCommunicationReferencesImmediately", "Sms2Way")] == [
        "sms_model", "create_communication_references_immediately", "sms2_way"]


# -- the endpoints -----------------------------------------------------------------------------------------------


async def test_types_lists_where_each_language_is(gw):
    response = await get(gw, "types", "http://127.0.0.1:7071/types")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.get_body()) == {"Metadata": "http://127.0.0.1:7071/types/metadata",
                                               "CSharp": "http://127.0.0.1:7071/types/csharp",
                                               "TypeScript": "http://127.0.0.1:7071/types/typescript",
                                               "Python": "http://127.0.0.1:7071/types/python"}


async def test_types_metadata_is_the_model_with_the_base_url_the_client_called_or_gave(gw):
    response = await get(gw, "types_metadata", "http://worker:7071/types/metadata", {"IncludeTypes": "GetUsage.*"},
                   {"X-Forwarded-Proto": "https"})  # Azure's front ends end TLS and say so
    meta = json.loads(response.get_body())
    assert meta == json.loads(json.dumps(metadata_types("https://worker:7071", parse({"IncludeTypes": "GetUsage.*"}))))
    given = json.loads((await get(gw, "types_metadata", "http://worker/types/metadata",
                                  {"BaseUrl": "https://sms.example.org/"})).get_body())
    assert given["config"]["baseUrl"] == "https://sms.example.org"
    odd = json.loads((await get(gw, "types_metadata", "http://worker/types/metadata",
                                headers={"X-Forwarded-Proto": "javascript"})).get_body())
    assert odd["config"]["baseUrl"] == "http://worker"


@pytest.mark.parametrize("function, language", [("types_typescript", Language.TYPESCRIPT), ("types_python", Language.PYTHON),
                                                ("types_csharp", Language.CSHARP)])
async def test_each_language_is_plain_text_starting_with_its_header(gw, function, language):
    response = await get(gw, function, "http://127.0.0.1:7071/types/x", {"IncludeTypes": "SMSSend.*", "NotAnOption": "x"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/plain; charset=utf-8"
    text = response.get_body().decode()
    start = header(language, parse({"IncludeTypes": "SMSSend.*"}), "http://127.0.0.1:7071", NOW)
    assert text.splitlines()[2:] [:len(start.splitlines()) - 2] == start.splitlines()[2:]  # all but its Date
    assert "SMSSend" in text[len(start):] and "Options:" in text


async def test_the_metadata_page_lists_every_operation_and_links_each_ones_page(gw):
    page = (await get(gw, "metadata_operations", "http://127.0.0.1:7071/metadata")).get_body().decode()
    for op in OPERATIONS:
        links = f'<a href="/json/metadata?op={op.name}">JSON</a></td><td><a href="/jsv/metadata?op={op.name}">JSV</a>'
        assert f"{op.name}</th><td>{links}" in page
    assert '<a href="/types/typescript">' in page and '<a href="/api/metadata">' in page


async def test_an_operations_page_shows_its_routes_fields_and_samples_in_its_format(gw):
    page = (await get(gw, "json_metadata", "http://127.0.0.1:7071/json/metadata", {"op": "getsmsstatus"})).get_body().decode()
    assert "<h2>GetSmsStatus</h2>" in page and "<th>GET</th><th>/api/sms/{commId}</th>" in page
    assert "<tr><td>CommId</td><td>path</td><td>Guid</td>" in page and "<b>RecipientState</b> Parameters:" in page
    assert "GET /api/sms/{commId} HTTP/1.1" in page and "&quot;recipientCount&quot;: 0" in page
    query = (await get(gw, "jsv_metadata", "http://127.0.0.1:7071/jsv/metadata", {"op": "QuerySms"})).get_body().decode()
    assert "<tr><td>PhoneNumber</td><td>query</td><td>string</td>" in query and "RecipientCount:0" in query
    python = (await get(gw, "json_metadata", "http://127.0.0.1:7071/json/metadata",
                        {"op": "SMSSend", "lang": "python"})).get_body().decode()
    assert '<code class="language-python">' in python and "class SMSModel(BaseLicenseeEnforcedServiceModel):" in python
    assert '<a href="/types/python?IncludeTypes=SMSSend.*">Python SMSSend DTOs</a>' in python and "Options:" not in python


async def test_an_unknown_operation_is_a_404_that_does_not_echo_markup(gw):
    response = await get(gw, "json_metadata", "http://h/json/metadata", {"op": "<script>alert(1)</script>"})
    assert response.status_code == 404 and b"<script>alert" not in response.get_body() and b"&lt;script&gt;" in response.get_body()
