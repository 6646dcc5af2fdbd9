"""/types/python: ServiceStack v8.8's Python DTOs, rendered from the gateway's own models and route table.

The seed's metadata page (shared/seed/SMSSend-metadata.txt) is the one sample of the original server's Python we
have: its classes are held to it line for line. The whole file must import with the real `servicestack` client
(PyPI 0.1.15), whose JsonServiceClient reads the response type from IReturn[...] and the verb from IGet/IPost/...
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path

import azure.functions as func
import pytest
from pydantic import Field
from servicestack import IReturn, from_json, to_json
from servicestack.clients import _resolve_response_type, resolve_httpmethod

from sms.entrypoints import reference
from sms.entrypoints.native_types import model, python
from sms.entrypoints.native_types.model import metadata_types
from sms.entrypoints.native_types.options import parse
from sms.entrypoints.operations import OPERATIONS
from sms.wire import dto
from sms.wire.formats import Format, encode

# The seed's page (the workplace's shared/seed/SMSSend-metadata.txt), kept with the goldens so that a clean clone has it.
SEED = Path(__file__).parent.parent / "golden" / "SMSSend-metadata.txt"
GOLDEN = Path(__file__).parent.parent / "golden" / "types_python_SMSSend.txt"
BASE = "https://sms.example.org"
DATE = re.compile(r"^Date: .*$", re.M)


def python_file(query: dict[str, str] | None = None) -> str:
    """What GET /types/python?<query> answers (the endpoint's own function): the header, then the rendered DTOs."""
    answer = reference.types(func.HttpRequest("GET", f"{BASE}/types/python", params=query or {}, body=b""), "types/python")
    assert (answer.status_code, answer.headers["Content-Type"]) == (200, "text/plain; charset=utf-8")
    return answer.get_body().decode()


def body(query: dict[str, str] | None = None) -> str:
    options = parse(query or {})
    return python.render(metadata_types(BASE, options), options)


def seed_python() -> str:
    """The Python block of the seed's page: from the imports to the end of SMSSend, with the blank line after it."""
    text = SEED.read_text()
    return text[text.index("import datetime"):text.index("Python SMSSend DTOs")]


def class_blocks(text: str) -> dict[str, str]:
    """Each class's text, from the comment and decorator lines above it to its last line."""
    blocks = {}
    for chunk in re.split(r"\n\n\n", text):
        found = re.search(r"^class (\w+)", chunk, re.M)
        if found:
            blocks[found.group(1)] = chunk.strip("\n") + "\n"
    return blocks


def load(text: str, tmp_path: Path, name: str):
    """Import the text as a module, as a client that saved it as dtos.py would."""
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the client resolves field types through the module's namespace
    spec.loader.exec_module(module)
    return module


def test_smssend_include_types_is_the_golden_text():
    """?IncludeTypes=SMSSend.* (the link on the metadata page): the header, the imports, then BaseLicensee..., SMSContact,
    SMSModel, CommResponse and SMSSend, each after what it names; the Date line masked."""
    served = DATE.sub("Date: <masked>", python_file({"IncludeTypes": "SMSSend.*"}))
    assert served == GOLDEN.read_text()


def test_the_seeds_classes_are_ours_line_for_line_then_the_fields_added_since():
    ours = class_blocks(body())
    for name, seed_block in class_blocks(seed_python()).items():
        if name == "SMSSend":
            continue  # the seed's page shows types only: no routes and no IReturn (the next test)
        assert ours[name].startswith(seed_block), name


def test_smssend_is_the_seeds_with_its_routes_and_return_marker():
    seed_block = class_blocks(seed_python())["SMSSend"]
    ours = class_blocks(body())["SMSSend"]
    routes = "".join(f'# @Route("/{route.path}", "POST")\n' for route in OPERATIONS[0].routes)
    assert ours == routes + seed_block.replace("class SMSSend:", "class SMSSend(IReturn[CommResponse]):")


def test_the_seeds_types_only_page_block_renders_byte_for_byte():
    """The metadata page (?op=SMSSend&lang=python) renders the operation's types without operations: given the seed's
    fields only, in the order the page lists them (the return type first), the text is the seed's exactly."""
    meta = metadata_types(BASE, parse({"IncludeTypes": "SMSSend.*"}))
    (op,) = meta["operations"]
    seed_fields = {name: re.findall(r"^    (\w+):", block, re.M) for name, block in class_blocks(seed_python()).items()}
    types = [op["response"], op["request"], *meta["types"]]
    for described in types:
        described["properties"] = [p for p in described["properties"]
                                   if python.property_name(p["name"]) in seed_fields[described["name"]]]
    text = python.render({"config": meta["config"], "namespaces": meta["namespaces"], "types": types, "operations": []}, parse({}))
    assert text == seed_python()


def test_every_operation_has_its_class_routes_return_marker_and_verb():
    blocks = class_blocks(body())
    for op in OPERATIONS:
        block = blocks[op.name]
        lines = block.split("\n")
        routes = [line for line in lines if line.startswith("# @Route(")]
        assert routes == [f'# @Route("/{route.path}", "{op.method}")' for route in op.routes], op.name
        assert f'# @Api(Description={json.dumps(op.description, ensure_ascii=False)})' in lines, op.name
        class_line = next(line for line in lines if line.startswith("class "))
        tail = f"IReturn[{op.response.__name__}]" + (f", {op.marker}" if op.marker else "") + "):"
        assert class_line.endswith(tail), class_line
        inherited = {name for base in op.request.__bases__ for name in getattr(base, "model_fields", {})}
        for field_name in set(op.request.model_fields) - inherited:
            assert re.search(rf"^    {field_name}_?: ", block, re.M), (op.name, field_name)


def test_ordinary_fields_follow_servicestacks_rules():
    blocks = class_blocks(body())
    message_state = blocks["MessageState"]
    assert "    recipient_count: int = 0\n" in message_state  # a non-nullable value type: its default
    assert "    segments: Optional[int] = None\n" in message_state  # an int?
    assert "    created_at: datetime.datetime = datetime.datetime(1, 1, 1)\n" in message_state
    assert "    recipients: List[RecipientState] = field(default_factory=list)\n" in message_state  # a required list
    assert "    send_at: Optional[datetime.datetime] = None\n" in message_state  # a DateTime?
    assert "    urgent: Optional[bool] = None\n" in message_state  # a bool?
    assert "    countries: Dict[str, str] = field(default_factory=dict)\n" in blocks["GuardState"]  # a required dictionary
    assert "    unaffected: Optional[Dict[str, int]] = None\n" in blocks["CancelResponse"]
    assert "class CountryCircuit(CircuitState):" in blocks["CountryCircuit"]
    assert "class AddWebhookEndpoint(WebhookEndpointRequest, IReturn[WebhookEndpointState], IPost):" in blocks["AddWebhookEndpoint"]
    assert ("    from_: Optional[str] = field(metadata=config(field_name='from'), default=None)\n"
            in blocks["QuerySms"])  # a keyword: as the seed's SMSModel.from_


def test_names_are_servicestacks_snake_case():
    assert python.property_name("SMSModel") == "sms_model"
    assert python.property_name("CreateCommunicationReferencesImmediately") == "create_communication_references_immediately"
    assert python.property_name("ID") == "id"
    assert python.property_name("FailuresInARow") == "failures_in_a_row"
    assert python.property_name("From") == "from_"
    assert python.property_name("Str") == "str_"  # a type's name


def test_each_type_is_declared_once_after_what_it_names():
    text = body()
    names = re.findall(r"^class (\w+)", text, re.M)
    assert len(names) == len(set(names))
    position = {name: i for i, name in enumerate(names)}
    for name, block in class_blocks(text).items():
        for used in re.findall(r"\b([A-Z]\w+)\b", block.split("class ", 1)[1]):
            if used in position:
                assert position[used] <= position[name], (name, used)


def test_servicestacks_own_types_come_from_its_library():
    text = body({"AddResponseStatus": "True"})
    assert "class ResponseStatus" not in text and "class ResponseError" not in text
    comm = class_blocks(text)["CommResponse"]
    # Last, right after the last docstring (no blank line there), as ServiceStack writes it.
    assert comm.endswith('table\n    """\n    response_status: ResponseStatus = None\n')
    assert "response_status" not in class_blocks(text)["SMSSend"]


def test_default_imports_replace_the_imports():
    text = body({"DefaultImports": "datetime,typing:List/Optional,dataclasses:dataclass/field"})
    assert text.startswith("import datetime\nfrom typing import List, Optional\nfrom dataclasses import dataclass, field\n\n\n")


def test_dataclass_options_replace_the_decorators():
    text = body({"DataClass": "init=False", "DataClassJson": "letter_case=LetterCase.PASCAL"})
    assert "\n@dataclass_json(letter_case=LetterCase.PASCAL)\n@dataclass(init=False)\nclass SMSContact:" in text
    assert "@dataclass\n" not in text


def test_other_options():
    assert "\n# module My.Dtos\n\n\n" in body({"GlobalNamespace": "My.Dtos"})
    quiet = body({"AddDescriptionAsComments": "False"})
    assert '"""' not in quiet and "class SMSSend(IReturn[CommResponse]):\n\n    sms_model" in quiet
    versioned = class_blocks(body({"AddImplicitVersion": "3"}))
    assert "    version: int = 3\n" in versioned["GetSmsStatus"] and "version" not in versioned["MessageState"]
    assert "    to: List[SMSContact] = field(default_factory=list)\n" in body({"InitializeCollections": "True"})
    assert "    reply_is_allowed: Optional[bool] = None\n" in body({"MakePropertiesOptional": "True"})
    assert "class SMSModel" not in body({"ExcludeTypes": "SMSModel"})
    contracts = class_blocks(body({"AddDataContractAttributes": "True", "AddIndexesToDataMembers": "True"}))["SMSContact"]
    assert "# @DataContract()\n" in contracts and "    # @DataMember(Order=2)\n    phone_number: Optional[str] = None\n" in contracts


def test_the_whole_file_imports_with_the_servicestack_client_and_reads_a_comm_response(tmp_path):
    dtos = load(python_file(), tmp_path, "dtos_all_types")
    for op in OPERATIONS:
        request = getattr(dtos, op.name)()
        assert isinstance(request, IReturn)
        assert _resolve_response_type(request) is getattr(dtos, op.response.__name__), op.name
        assert resolve_httpmethod(request) == op.method, op.name
    sent = dto.CommResponse(comm_id="0" * 31 + "1", reference="R-1", status=True, message="Queued for 1 recipient",
                            encoding="GSM-7", segments=2, recipients=1, blocked=0, estimated_cost="0.10", currency="AUD")
    wire = encode(sent, Format.JSON).decode()
    read = from_json(dtos.CommResponse, wire)
    assert (read.comm_id, read.reference, read.status, read.segments, read.estimated_cost) == ("0" * 31 + "1", "R-1", True, 2, "0.10")
    assert json.loads(to_json(read)) == json.loads(wire)


def test_the_whole_file_writes_a_request_as_the_gateway_reads_it(tmp_path):
    dtos = load(python_file(), tmp_path, "dtos_requests")
    request = dtos.SMSSend(sms_model=dtos.SMSModel(from_=dtos.SMSContact(name="Ops"), to=[dtos.SMSContact(phone_number="+61412700001")],
                                                   message_body="hi", max_segments=2))
    data = json.loads(to_json(request))
    read = dto.SMSSend.model_validate(data)
    assert read.sms_model.from_.name == "Ops" and read.sms_model.to[0].phone_number == "+61412700001"
    assert read.sms_model.max_segments == 2


def test_a_field_added_to_a_model_appears_by_itself(tmp_path, monkeypatch):
    class CommResponse(dto.CostEstimate, dto.SeedCommResponse):
        delivery_window: int | None = Field(default=None, description="A field added later")

    operations = (dataclasses.replace(OPERATIONS[0], response=CommResponse), *OPERATIONS[1:])
    monkeypatch.setattr(model, "OPERATIONS", operations)
    model._everything.cache_clear()
    try:
        text = python_file()
    finally:
        monkeypatch.undo()
        model._everything.cache_clear()
    assert "    delivery_window: Optional[int] = None\n    \"\"\"\n    A field added later\n" in class_blocks(text)["CommResponse"]
    dtos = load(text, tmp_path, "dtos_added_field")
    assert from_json(dtos.CommResponse, '{"commId":"x","deliveryWindow":30}').delivery_window == 30


def test_each_operations_own_file_imports_on_its_own(tmp_path):
    """IncludeTypes={Operation}.* (the metadata page's link): a module that imports, with its request's answer type."""
    for op in OPERATIONS:
        dtos = load(python_file({"IncludeTypes": f"{op.name}.*"}), tmp_path, f"dtos_{op.name}")
        assert _resolve_response_type(getattr(dtos, op.name)()) is getattr(dtos, op.response.__name__), op.name

@pytest.mark.parametrize("query", [{}, {"IncludeTypes": "{sms}"}, {"ExcludeTypes": "types"}, {"AddResponseStatus": "True"},
                                   {"InitializeCollections": "True", "MakePropertiesOptional": "True"}])
def test_every_variant_compiles(query):
    compile(python_file(query), "dtos.py", "exec")
