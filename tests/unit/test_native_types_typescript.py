"""/types/typescript's text: ServiceStack v8.8's TypeScript DTOs, rendered from the MetadataTypes model.

The shape is pinned by a golden file (the IncludeTypes=SMSSend.* file; TypeScriptGenerator.cs,
github.com/ServiceStack/ServiceStack at tag v8.8, d1f7ab8f55e9); the rest checks what
must hold for every operation and type, so that an operation or a field added to the DTOs is covered by itself.
"""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import typing
from pathlib import Path

import azure.functions as func
import pydantic
import pytest
from pydantic import Field

from sms.config import PROJECT_ROOT
from sms.domain.errors import ValidationFailed
from sms.entrypoints import reference
from sms.entrypoints.native_types import model, typescript
from sms.entrypoints.native_types.model import dotnet_name, json_name, metadata_types
from sms.entrypoints.native_types.names import camel_case
from sms.entrypoints.native_types.options import Language, header, parse
from sms.entrypoints.operations import OPERATIONS
from sms.wire import dto, requests
from sms.wire.dto import WireModel

BASE_URL = "http://127.0.0.1:7071"
GOLDEN = Path(__file__).parent.parent / "golden" / "types_typescript_SMSSend.txt"
TSC = PROJECT_ROOT / "node_modules" / ".bin" / "tsc"


def dtos(**query: str) -> str:
    """The whole file /types/typescript answers for this query, its Date line masked."""
    options = parse(query)
    text = header(Language.TYPESCRIPT, options, BASE_URL) + typescript.render(metadata_types(BASE_URL, options), options)
    return re.sub(r"(?m)^Date: .*$", "Date: <masked>", text)


@dataclasses.dataclass
class Declared:
    kind: str  # class | interface
    name: str
    preamble: list[str]  # the comment lines before it (@description, @Route, @Api)
    line: str  # `export class X extends Y implements ...`
    body: list[str]  # the lines between its braces

    @property
    def properties(self) -> dict[str, str]:
        """Each property's name and the rest of its line (`?: string;`, `!: number;` ...)."""
        found = (re.match(r"\s*public (\w+)([?!]?:.*);$", line) for line in self.body)
        return {m[1]: m[2] for m in found if m}

    @property
    def extends(self) -> str | None:
        m = re.search(r" extends (\w+)", self.line)
        return m[1] if m else None


def declared(text: str) -> dict[str, Declared]:
    """Every `export class`/`export interface` of a file, in order."""
    lines = text.split("\n")
    found: dict[str, Declared] = {}
    for i, line in enumerate(lines):
        m = re.match(r"(\s*)export (class|interface) (\w+)", line)
        if not m:
            continue
        start = i
        while lines[start - 1].strip().startswith(("//", "/**")):
            start -= 1
        end = lines.index(m[1] + "}", i)
        found[m[3]] = Declared(m[2], m[3], [s.strip() for s in lines[start:i]], line.strip(), lines[i + 2:end])
    return found


def test_the_smssend_file_is_servicestack_v88s_text():
    # Regenerate after a deliberate change to SMSSend's types with:
    # .venv/bin/python -c "from tests.unit.test_native_types_typescript import *; GOLDEN.write_text(dtos(IncludeTypes='SMSSend.*'))"
    assert dtos(IncludeTypes="SMSSend.*") == GOLDEN.read_text()


def test_the_golden_file_is_v88s_shape_with_only_the_strict_mode_departure():
    # The golden file itself, line by line against ServiceStack v8.8's TypeScriptGenerator.cs: two blank
    # lines after the header, IReturn<T> alone (IncludeTypes declares only what SMSSend.* uses), base class first,
    # constructors, the request's routes, [Api], getTypeName/getMethod/createResponse; the one departure is `?`.
    text = GOLDEN.read_text()
    assert ("*/\n\n\nexport interface IReturn<T>\n{\n    createResponse(): T;\n}\n\n"
            "export class BaseLicenseeEnforcedServiceModel\n{\n") in text
    assert "IReturnVoid" not in text and "IPost" not in text and "@ts-nocheck" not in text
    assert list(declared(text)) == ["IReturn", "BaseLicenseeEnforcedServiceModel", "SMSContact", "SMSModel", "CommResponse", "SMSSend"]
    assert ("\n    public constructor(init?: Partial<SMSModel>) { super(init); (Object as any).assign(this, init); }\n}\n" in text)
    assert text.endswith("\n".join([
        "/** @description Saves the specified SMS and sends it for background processing */",
        *(f'// @Route("/{route.path}", "POST")' for route in OPERATIONS[0].routes),
        '// @Api(Description="Saves the specified SMS and sends it for background processing")',
        "export class SMSSend implements IReturn<CommResponse>",
        "{",
        "    public smsModel?: SMSModel;",
        "    public createCommunicationReferencesImmediately?: boolean;",
        "",
        "    public constructor(init?: Partial<SMSSend>) { (Object as any).assign(this, init); }",
        "    public getTypeName() { return 'SMSSend'; }",
        "    public getMethod() { return 'POST'; }",
        "    public createResponse() { return new CommResponse(); }",
        "}",
        "", ""]))
    assert "    public contactId?: string;\n" in text and "    public to?: SMSContact[];\n" in text


def test_every_operation_is_a_request_class_with_its_routes_verb_and_response():
    text = dtos()
    types = declared(text)
    assert len(OPERATIONS) >= 21
    for op in OPERATIONS:
        request = types[op.name]
        markers = f", {op.marker}" if op.marker else ""
        assert re.fullmatch(rf"export class {op.name}( extends \w+)? implements IReturn<{op.response.__name__}>{markers}", request.line)
        routes = [line for line in request.preamble if line.startswith("// @Route(")]
        assert routes == [f'// @Route("/{route.path}", "{op.method}")' for route in op.routes] and routes, op.name
        assert f"/** @description {op.description} */" in request.preamble
        assert f"    public getTypeName() {{ return '{op.name}'; }}" in request.body
        assert f"    public getMethod() {{ return '{op.method}'; }}" in request.body
        assert f"    public createResponse() {{ return new {op.response.__name__}(); }}" in request.body
        assert types[op.response.__name__].kind == "class"
    # The built-in interfaces, once each, before everything: the return markers, then the verb markers in order of use.
    assert list(types)[:6] == ["IReturn", "IReturnVoid", "IPost", "IGet", "IDelete", "IPut"]
    assert text.count("export interface IGet\n{\n}\n") == 1


def test_every_type_comes_after_the_types_it_needs():
    types = declared(dtos(AddResponseStatus="True"))
    order = list(types)
    for name, t in types.items():
        needed = set(re.findall(r"\b[A-Z]\w+\b", t.line.split(name, 1)[1]))
        for suffix in t.properties.values():
            needed |= set(re.findall(r"\b[A-Z]\w+\b", suffix))
        for other in needed & set(types):
            assert order.index(other) < order.index(name), f"{name} needs {other}"


def _models() -> list[type[WireModel]]:
    """Every DTO the operations send or answer, and those they hold, plus ServiceStack's ResponseStatus (a base class
    is checked through its subclasses: CommResponse declares the fields of both its Python bases itself)."""
    found: list[type[WireModel]] = []

    def visit(annotation: typing.Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, WireModel):
            if annotation not in found:
                found.append(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation)
        for arg in typing.get_args(annotation):
            visit(arg)

    for op in OPERATIONS:
        visit(op.request)
        visit(op.response)
    visit(dto.ResponseStatus)
    return [m for m in found if m is not WireModel]


def test_every_property_is_named_as_our_json_names_it():
    # ServiceStack's clients send and read the TypeScript property names as they are: ToCamelCase of the .NET name
    # must be exactly the name the gateway's JSON writes (the pydantic serialization alias), field by field.
    wrong = [(m.__name__, dotnet_name(n, f), json_name(n, f)) for m in _models() for n, f in m.model_fields.items()
             if camel_case(dotnet_name(n, f)) != json_name(n, f)]
    assert wrong == []
    # And the file declares, for each DTO, exactly its JSON names (its own, and its base classes' through `extends`).
    types = declared(dtos(AddResponseStatus="True"))
    responses = {op.response.__name__ for op in OPERATIONS}
    for m in _models():
        names, t = set(), types[m.__name__]
        while t is not None:
            names |= set(t.properties)
            t = types[t.extends] if t.extends else None
        expected = {json_name(n, f) for n, f in m.model_fields.items()} | ({"responseStatus"} if m.__name__ in responses else set())
        assert names == expected, m.__name__


@pytest.mark.parametrize(("dotnet", "camel"), [
    ("SMSModel", "smsModel"), ("ID", "id"), ("Id", "id"), ("LicenseeId", "licenseeId"), ("URLs", "urLs"),
    ("FailuresInARow", "failuresInARow"), ("CreateCommunicationReferencesImmediately", "createCommunicationReferencesImmediately"),
    ("From", "from"), ("A", "a"), ("", ""),
])
def test_camel_case_is_servicestacks(dotnet, camel):
    assert camel_case(dotnet) == camel


def test_types_map_as_servicestack_maps_them():
    types = declared(dtos())
    assert types["MessageState"].properties["recipientCount"] == "!: number"  # Int32, required
    assert types["MessageState"].properties["segments"] == "?: number"  # Int32?
    assert types["MessageState"].properties["createdAt"] == "!: string"  # DateTime
    assert types["MessageState"].properties["sendAt"] == "?: string"  # DateTime?
    assert types["MessageState"].properties["urgent"] == "?: boolean"  # bool?
    assert types["MessageState"].properties["recipients"] == ": RecipientState[] = []"  # required List<T>
    assert types["MessageSummary"].properties["counts"] == "?: { [index:string]: number; }"  # Dictionary<string,int>
    assert types["GuardState"].properties["countries"] == ": { [index:string]: string; } = {}"  # required Dictionary
    assert types["QuerySms"].properties["contactId"] == "?: string"  # Guid?
    assert types["QuerySms"].properties["take"] == "?: number"
    assert types["SMSModel"].properties["replyIsAllowed"] == "?: boolean"  # bool, not required
    assert types["CountryCircuit"].line == "export class CountryCircuit extends CircuitState"


def test_make_properties_optional_marks_every_property():
    types = declared(dtos(MakePropertiesOptional="True"))
    props = [suffix for t in types.values() for suffix in t.properties.values()]
    assert props and all(suffix.startswith("?: ") and "=" not in suffix for suffix in props)
    assert "MakePropertiesOptional: True\n" in dtos(MakePropertiesOptional="True")


def test_global_namespace_wraps_everything_in_a_module():
    text = dtos(GlobalNamespace="Sms.Dtos")
    body = text.split("*/\n", 1)[1]
    assert body.startswith("\n\nexport module Sms.Dtos\n{\n\n    export interface IReturn<T>\n    {\n        createResponse(): T;\n    }\n")
    last = OPERATIONS[-1].response.__name__  # the last operation's request DTO closes the module
    assert body.endswith(f"        public createResponse() {{ return new {last}(); }}\n    }}\n\n}}\n\n")
    assert all(line == "" or line.startswith("    ") for line in body.split("\n")[4:-3])


@pytest.mark.parametrize("bad", ["Sms-Dtos", "a b", "1abc", 'x"y', "a.", "x{y"])
def test_a_global_namespace_that_is_no_typescript_name_is_refused(bad):
    with pytest.raises(ValidationFailed) as raised:
        dtos(GlobalNamespace=bad)
    assert raised.value.field_errors[0].field_name == "GlobalNamespace" and bad in raised.value.message


@pytest.mark.parametrize(("name", "value"), [("GlobalNamespace", "Sms-Dtos"), ("DefaultImports", "x;alert(1)")])
def test_over_http_a_bad_option_is_a_400_naming_it(name, value):
    # House rule: bad input is a 400 in ServiceStack's shape naming the problem, never a 500.
    req = func.HttpRequest("GET", f"{BASE_URL}/types/typescript", headers={}, params={name: value}, body=b"")
    response = reference.types(req, "types/typescript")
    assert response.status_code == 400, (response.status_code, response.get_body()[:300])
    status = json.loads(response.get_body())["responseStatus"]
    assert [e["fieldName"] for e in status["errors"]] == [name] and value in status["message"]


def test_default_imports_come_first():
    text = dtos(DefaultImports="IReturn:@servicestack/client,Dictionary:./shared")
    assert "DefaultImports: IReturn:@servicestack/client,Dictionary:./shared\n*/\n\n" in text
    assert '*/\n\nimport { IReturn } from "@servicestack/client";\nimport { Dictionary } from "./shared";\n\nexport interface' in text


@pytest.mark.parametrize("bad", ['x;alert(1)', 'a:b";c', "a\nb"])
def test_a_default_import_that_is_not_a_name_is_refused(bad):
    with pytest.raises(ValidationFailed) as raised:
        dtos(DefaultImports=bad)
    assert raised.value.field_errors[0].field_name == "DefaultImports"


def test_add_service_stack_types_false_leaves_the_interfaces_out():
    types = declared(dtos(AddServiceStackTypes="False"))
    assert [t.name for t in types.values() if t.kind == "interface"] == []
    assert "implements IReturn<MessageState>, IGet" in types["GetSmsStatus"].line


def test_descriptions_can_be_left_out():
    assert "@description" in dtos()
    assert "@description" not in dtos(AddDescriptionAsComments="False")
    assert '// @Api(Description="Saves the specified SMS' in dtos(AddDescriptionAsComments="False")


def test_include_types_by_tag_declares_the_markers_those_requests_use():
    types = declared(dtos(IncludeTypes="{webhooks}"))
    assert [t.name for t in types.values() if t.kind == "interface"] == ["IReturn", "IGet", "IPost", "IDelete"]
    assert "SMSSend" not in types and "GetWebhookDeliveries" in types


def test_exclude_types_can_drop_a_builtin_interface():
    types = declared(dtos(ExcludeTypes="IReturnVoid"))
    assert "IReturnVoid" not in types and "IReturn" in types


def test_add_response_status_declares_servicestacks_response_status():
    types = declared(dtos(AddResponseStatus="True"))
    assert types["CommResponse"].properties["responseStatus"] == "?: ResponseStatus"
    assert types["ResponseStatus"].properties == {"errorCode": "!: string", "message": "!: string",
                                                  "errors": "?: ResponseError[]", "meta": "?: { [index:string]: string; }"}
    assert "responseStatus" not in types["SMSSend"].properties


def test_ignored_options_change_nothing_but_the_header():
    plain = dtos().split("*/\n", 1)[1]
    assert dtos(AddImplicitVersion="2", MakePartial="False").split("*/\n", 1)[1] == plain


@pytest.fixture
def get_usage_with_a_new_field(monkeypatch):
    """GetUsage as if a field had been added to it: a copy of the model with one field more, in the operation list."""
    fields = {name: (f.annotation, f) for name, f in requests.GetUsage.model_fields.items()}
    grown = pydantic.create_model("GetUsage", __base__=WireModel, **fields,
                                  time_zone=(str | None, Field(default=None, description="An IANA time zone")))
    monkeypatch.setattr(model, "OPERATIONS", tuple(dataclasses.replace(op, request=grown) if op.request is requests.GetUsage else op
                                                   for op in OPERATIONS))
    model._everything.cache_clear()
    yield
    model._everything.cache_clear()


def test_a_field_added_to_a_dto_appears_by_itself(get_usage_with_a_new_field):
    usage = declared(dtos())["GetUsage"]
    assert usage.properties == {"from": "?: string", "to": "?: string", "licenseeId": "?: string", "timeZone": "?: string"}
    assert "    /** @description An IANA time zone */" in usage.body


def test_every_variant_compiles_with_tsc_strict(tmp_path):
    # The file must compile as it is, under --strict and without `// @ts-nocheck`, with every option that changes it,
    # and the classes must type-check where a program uses them.
    variants = {
        "all": {}, "smssend": {"IncludeTypes": "SMSSend.*"}, "optional": {"MakePropertiesOptional": "True"},
        "module": {"GlobalNamespace": "Sms.Dtos"}, "status": {"AddResponseStatus": "True"}, "tag": {"IncludeTypes": "{guard}"},
        "nocomments": {"AddDescriptionAsComments": "False"},
        "imported": {"IncludeTypes": "SMSSend.*", "AddServiceStackTypes": "False", "DefaultImports": "IReturn:@servicestack/client"},
        # each operation's own file, as the metadata page links it: self-contained
        **{f"op_{op.name}": {"IncludeTypes": f"{op.name}.*"} for op in OPERATIONS},
    }
    for name, query in variants.items():
        (tmp_path / f"{name}.dtos.ts").write_text(dtos(**query))
    (tmp_path / "use.ts").write_text("\n".join([
        'import { SMSSend, SMSModel, SMSContact, CommResponse, GetSmsStatus, MessageState } from "./all.dtos.js";',
        'import { Sms } from "./module.dtos.js";',
        'const send = new SMSSend({ smsModel: new SMSModel({ to: [new SMSContact({ phoneNumber: "+61412700001" })] }) });',
        "const answer: CommResponse = send.createResponse();",
        "const state: MessageState = new GetSmsStatus({ commId: 'x' }).createResponse();",
        "const recipientCount: number = state.recipientCount;",  # required: a number, not number | undefined
        "const segments: number | undefined = state.segments;",  # absent while a one-call message is written
        "const count: number = state.recipients.length;",
        "const method: string = new Sms.Dtos.GetGuard().getMethod();",
        "console.log(answer.commId ?? '', recipientCount, segments, count, method, send.getTypeName());",
        ""]))
    (tmp_path / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    result = subprocess.run([str(TSC), "--strict", "--noEmit", "--target", "es2022", "--module", "nodenext",
                             "--moduleResolution", "nodenext", *sorted(p.name for p in tmp_path.glob("*.ts"))],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "@ts-nocheck" not in "".join(p.read_text() for p in tmp_path.glob("*.dtos.ts"))
