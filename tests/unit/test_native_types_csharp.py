"""/types/csharp: ServiceStack v8.8's C# DTOs, rendered from the gateway's own models and route table.

No .NET here to compile them, so the text is parsed with tree-sitter's C# grammar (requirements-dev.txt): no syntax
errors in any variant, and the classes, properties and attributes it finds are the model's. ServiceStack's C#
JsonServiceClient sends a request to the URL of its [Route] attributes, so every route of every operation is there.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import azure.functions as func
import pytest
import tree_sitter
import tree_sitter_c_sharp
from pydantic import Field

from sms.entrypoints import reference
from sms.entrypoints.native_types import csharp, model
from sms.entrypoints.native_types.model import NAMESPACE, metadata_types
from sms.entrypoints.native_types.options import parse
from sms.entrypoints.operations import OPERATIONS
from sms.wire import dto

GOLDEN = Path(__file__).parent.parent / "golden" / "types_csharp_SMSSend.txt"
BASE = "https://sms.example.org"
DATE = re.compile(r"^Date: .*$", re.M)
PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_c_sharp.language()))

# ServiceStack's C# for the seed's DTOs, as CSharpGenerator.cs writes it (github.com/ServiceStack/ServiceStack at tag v8.8, d1f7ab8f55e9;
# read for issue 28), with the seed's routes: the lines of ours for these types, in this order, less what the gateway added
# since (properties, descriptions). The routes are compared apart: the route table lists them in its own order.
SERVICESTACK_REFERENCE = """\
using System;
using System.IO;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.Serialization;
using ServiceStack;
using ServiceStack.DataAnnotations;
using SMSGateway.ServiceModel;

namespace SMSGateway.ServiceModel
{
    public partial class BaseLicenseeEnforcedServiceModel
    {
        public virtual Guid LicenseeId { get; set; }
    }

    public partial class CommResponse
    {
        public virtual Guid CommId { get; set; }
        public virtual string Reference { get; set; }
        public virtual bool Status { get; set; }
        public virtual string Message { get; set; }
    }

    public partial class SMSContact
    {
        public virtual string Name { get; set; }
        public virtual string PhoneNumber { get; set; }
        public virtual Guid ContactId { get; set; }
    }

    public partial class SMSModel
        : BaseLicenseeEnforcedServiceModel
    {
        public virtual SMSContact From { get; set; }
        public virtual List<SMSContact> To { get; set; }
        public virtual string MessageBody { get; set; }
        public virtual bool ReplyIsAllowed { get; set; }
        public virtual bool ReplyIsRequired { get; set; }
        public virtual string Notes { get; set; }
        public virtual Guid LinkedObjectId { get; set; }
        public virtual Guid SuiteId { get; set; }
    }

    ///<summary>
    ///Saves the specified SMS and sends it for background processing
    ///</summary>
    [Route("/api/sendmessage", "POST")]
    [Route("/api/sendmessage/immediate", "POST")]
    [Route("/api/send", "POST")]
    [Route("/api/sms/send", "POST")]
    [Route("/api/send/immediate", "POST")]
    [Route("/api/sms/send/immediate", "POST")]
    [Api(Description="Saves the specified SMS and sends it for background processing")]
    public partial class SMSSend
        : IReturn<CommResponse>
    {
        public virtual SMSModel SMSModel { get; set; }
        public virtual bool CreateCommunicationReferencesImmediately { get; set; }
    }

}

"""


def csharp_file(query: dict[str, str] | None = None) -> str:
    """What GET /types/csharp?<query> answers (the endpoint's own function): the header, then the rendered DTOs."""
    answer = reference.types(func.HttpRequest("GET", f"{BASE}/types/csharp", params=query or {}, body=b""), "types/csharp")
    assert (answer.status_code, answer.headers["Content-Type"]) == (200, "text/plain; charset=utf-8")
    return answer.get_body().decode()


def body(query: dict[str, str] | None = None) -> str:
    options = parse(query or {})
    return csharp.render(metadata_types(BASE, options), options)


def parse_csharp(text: str) -> tree_sitter.Node:
    root = PARSER.parse(text.encode()).root_node
    bad = [node for node in _nodes(root) if node.is_error or node.is_missing]
    assert not bad, [(node.start_point, node.type, node.text.decode()[:60]) for node in bad]
    return root


def _nodes(node: tree_sitter.Node):
    yield node
    for child in node.children:
        yield from _nodes(child)


def _text(node: tree_sitter.Node) -> str:
    return re.sub(r"\s+", "", node.text.decode())


def declared(root: tree_sitter.Node) -> dict[str, dict]:
    """What the parse tree declares: per class its namespace, bases, attributes (name, argument values) and
    properties (type, name)."""
    classes = {}
    for node in _nodes(root):
        if node.type != "class_declaration":
            continue
        namespace = node.parent.parent.child_by_field_name("name")
        bases = next((c for c in node.children if c.type == "base_list"), None)
        attributes = []
        for attribute in (a for lst in node.children if lst.type == "attribute_list" for a in lst.children if a.type == "attribute"):
            arguments = attribute.child_by_field_name("name").next_sibling
            values = [json.loads(_literal(arg)) for arg in (arguments.children if arguments else []) if arg.type == "attribute_argument"]
            attributes.append((attribute.child_by_field_name("name").text.decode(), values))
        properties = [(_text(p.child_by_field_name("type")), p.child_by_field_name("name").text.decode())
                      for p in node.child_by_field_name("body").children if p.type == "property_declaration"]
        classes[node.child_by_field_name("name").text.decode()] = {
            "namespace": namespace.text.decode() if namespace else None,
            "bases": [_text(b) for b in bases.children if b.type not in (":", ",")] if bases else [],
            "attributes": attributes, "properties": properties,
        }
    return classes


def _literal(argument: tree_sitter.Node) -> str:
    string = next(c for c in argument.children if c.type == "string_literal")
    return string.text.decode()


def expected_type(prop: dict) -> str:
    """The C# a .NET type (as the model names it) is written as, independently of the renderer."""
    keywords = {"String": "string", "Boolean": "bool", "Int32": "int", "Int64": "long", "Double": "double", "Decimal": "decimal"}
    args = [keywords.get(a, a) for a in prop.get("genericArgs") or []]
    if prop["type"] == "Nullable`1":
        return args[0] + "?"
    if prop["type"] == "List`1":
        return f"List<{args[0]}>"
    if prop["type"] == "Dictionary`2":
        return f"Dictionary<{args[0]},{args[1]}>"
    return keywords.get(prop["type"], prop["type"])


def expected_classes(meta: dict) -> dict[str, dict]:
    """The classes the model describes (ServiceStack's own left out), as the parse tree should show them."""
    ops = {op["request"]["name"]: op for op in meta["operations"]}
    described = {t["name"]: t for t in meta["types"]} | {op["response"]["name"]: op["response"] for op in meta["operations"]}
    described |= {op["request"]["name"]: op["request"] for op in meta["operations"]}
    classes = {}
    for name, t in described.items():
        if t["namespace"] == "ServiceStack":
            continue
        op = ops.get(name)
        bases = [t["inherits"]["name"]] if t.get("inherits") else []
        bases += [f"IReturn<{op['returnType']['name']}>"] if op else []
        bases += [i["name"] for i in t["implements"]]
        attributes = [("Route", [r["path"], r["verbs"]]) for r in op["routes"]] if op else []
        attributes += [(a["name"], [arg["value"] for arg in a["args"]]) for a in t.get("attributes") or []]
        classes[name] = {"namespace": NAMESPACE, "bases": bases, "attributes": attributes,
                         "properties": [(expected_type(p), p["name"]) for p in t["properties"]]}
    return classes


def test_smssend_include_types_is_the_golden_text():
    """?IncludeTypes=SMSSend.* (the link on the metadata page): header, usings, then the five types by name in one
    namespace; the Date line masked."""
    served = DATE.sub("Date: <masked>", csharp_file({"IncludeTypes": "SMSSend.*"}))
    assert served == GOLDEN.read_text()


def test_smssend_include_types_is_servicestacks_text_for_the_seeds_fields():
    ours = body({"IncludeTypes": "SMSSend.*"}).split("\n")
    reference = SERVICESTACK_REFERENCE.split("\n")
    assert sorted(line for line in ours if "[Route(" in line) == sorted(line for line in reference if "[Route(" in line)
    remaining = iter(line for line in ours if "[Route(" not in line)
    for line in (line for line in reference if "[Route(" not in line):  # in order, with ours' added lines between
        assert any(line == found for found in remaining), line
    added = [line for line in ours if line.strip() and line not in reference]
    assert all(line.startswith("        ///") or line.startswith("        public virtual ") for line in added), added


def test_the_whole_file_parses_as_csharp_and_declares_the_models_classes():
    meta = metadata_types(BASE, parse({}))
    root = parse_csharp(csharp_file())
    assert declared(root) == expected_classes(meta)
    names = [n.child_by_field_name("name").text.decode() for n in _nodes(root) if n.type == "class_declaration"]
    assert names == sorted(names, key=lambda name: (name.lower(), name.swapcase()))  # .NET's culture-aware order


def test_every_operation_has_its_routes_and_return_marker():
    classes = declared(parse_csharp(csharp_file()))
    for op in OPERATIONS:
        declared_op = classes[op.name]
        assert [args for name, args in declared_op["attributes"] if name == "Route"] == [
            ["/" + route.path, op.method] for route in op.routes], op.name
        assert f"IReturn<{op.response.__name__}>" in declared_op["bases"], op.name
        assert (op.marker in declared_op["bases"]) if op.marker else declared_op["bases"][-1].startswith("IReturn<"), op.name
        assert ("Api", [op.description]) in declared_op["attributes"], op.name


def test_smssends_routes_are_all_there_for_the_csharp_clients_route_choice():
    """ServiceStack's C# client posts SMSSend to the shortest of its POST routes (/api/send): every one must be listed."""
    routes = re.findall(r'\[Route\("([^"]+)", "POST"\)\]\n(?=(?:    \[.*\n)*    public partial class SMSSend\n)', body())
    assert set(routes) == {"/api/sendmessage", "/api/sendmessage/immediate", "/api/send", "/api/sms/send", "/api/send/immediate",
                           "/api/sms/send/immediate"}


def test_servicestacks_own_types_come_from_its_library():
    text = csharp_file({"AddResponseStatus": "True"})
    classes = declared(parse_csharp(text))
    assert "ResponseStatus" not in classes and "ResponseError" not in classes
    assert classes["CommResponse"]["properties"][-1] == ("ResponseStatus", "ResponseStatus")
    assert "using ServiceStack;\n" in text


@pytest.mark.parametrize("query", [
    {}, {"MakePartial": "False", "MakeVirtual": "False", "MakeInternal": "True"}, {"AddNullableAnnotations": "True"},
    {"InitializeCollections": "True"}, {"GlobalNamespace": "My.Dtos"}, {"ExcludeNamespace": "True"},
    {"AddNamespaces": "System.Text,My.Extras"}, {"AddDescriptionAsComments": "False"}, {"AddImplicitVersion": "2"},
    {"AddDataContractAttributes": "True", "AddIndexesToDataMembers": "True"}, {"AddGeneratedCodeAttributes": "True"},
    {"MakeDataContractsExtensible": "True"}, {"AddResponseStatus": "True", "AddNullableAnnotations": "True"},
    {"IncludeTypes": "{webhooks}"}, {"ExcludeTypes": "types"},
])
def test_every_variant_parses(query):
    parse_csharp(csharp_file(query))


def test_modifiers():
    plain = body({"MakePartial": "False", "MakeVirtual": "False", "MakeInternal": "True"})
    assert "    internal class SMSContact\n" in plain and "        public string Name { get; set; }\n" in plain
    assert "partial" not in plain and "virtual" not in plain


def test_nullable_annotations_mark_what_may_be_absent():
    classes = declared(parse_csharp(csharp_file({"AddNullableAnnotations": "True"})))
    state = dict((name, kind) for kind, name in classes["MessageState"]["properties"])
    assert state["Reference"] == "string"  # required
    assert state["LicenseeId"] == "string"
    assert state["Replies"] == "List<ReplyState>?" and state["Recipients"] == "List<RecipientState>"
    assert state["RecipientCount"] == "int" and state["SendAt"] == "DateTime?"
    # Absent while a message accepted in one storage call is being written (issue 30)
    assert (state["Encoding"], state["Segments"]) == ("string?", "int?")
    contact = dict((name, kind) for kind, name in classes["SMSContact"]["properties"])
    assert contact == {"Name": "string?", "PhoneNumber": "string?", "ContactId": "Guid"}


def test_collections_are_initialized_when_required_or_asked():
    assert "        public virtual List<RecipientState> Recipients { get; set; } = [];\n" in body()  # required
    assert "        public virtual Dictionary<string, string> Countries { get; set; } = new();\n" in body()
    assert "        public virtual List<SMSContact> To { get; set; }\n" in body()
    assert "        public virtual List<SMSContact> To { get; set; } = [];\n" in body({"InitializeCollections": "True"})


def test_namespaces():
    global_ns = body({"GlobalNamespace": "My.Dtos"})
    assert "using My.Dtos;\n\nnamespace My.Dtos\n{\n" in global_ns and "SMSGateway" not in global_ns
    bare = body({"ExcludeNamespace": "True"})
    assert "namespace" not in bare and "\npublic partial class SMSContact\n{\n    public virtual string Name" in bare
    extra = body({"AddNamespaces": "System.Text,My.Extras"})
    assert "using ServiceStack.DataAnnotations;\nusing System.Text;\nusing My.Extras;\nusing SMSGateway.ServiceModel;\n" in extra


def test_descriptions_as_attributes_and_data_contracts_and_versions():
    described = body({"AddDescriptionAsComments": "False"})
    assert "///" not in described
    assert '    [Description("Saves the specified SMS and sends it for background processing")]\n    [Route(' in described
    contracts = body({"AddDataContractAttributes": "True", "AddIndexesToDataMembers": "True"})
    assert '[assembly: ContractNamespace("http://schemas.servicestack.net/types", ClrNamespace="SMSGateway.ServiceModel")]' in contracts
    own = body({"AddDataContractAttributes": "True", "AddDefaultXmlNamespace": "urn:example:sms"})
    assert '[assembly: ContractNamespace("urn:example:sms", ClrNamespace="SMSGateway.ServiceModel")]' in own
    assert "    [DataContract]\n    public partial class SMSContact\n    {\n        [DataMember(Order=1)]\n" in contracts
    versioned = body({"AddImplicitVersion": "2"})
    assert ("        public virtual int Version { get; set; }\n\n        public GetSmsStatus()\n        {\n"
            "            Version = 2;\n        }\n\n") in versioned
    assert "public SMSContact()" not in versioned


def test_a_field_added_to_a_model_appears_by_itself(monkeypatch):
    class CommResponse(dto.CostEstimate, dto.SeedCommResponse):
        delivery_window: int | None = Field(default=None, description="A field added later")

    monkeypatch.setattr(model, "OPERATIONS", (dataclasses.replace(OPERATIONS[0], response=CommResponse), *OPERATIONS[1:]))
    model._everything.cache_clear()
    try:
        text = csharp_file()
    finally:
        monkeypatch.undo()
        model._everything.cache_clear()
    assert declared(parse_csharp(text))["CommResponse"]["properties"][-1] == ("int?", "DeliveryWindow")
