"""infra/main.bicep and azure.yaml, checked where no Bicep compiler is installed (infra/check.sh runs this file too).

main.bicep is parsed with pycep-parser, so a syntax error fails here; every resource type and API version it declares
must be one of the pairs below, so a typo in either fails here too (a Bicep compiler only warns on an unknown one, BCP081).
azure.yaml must parse, point at main.bicep, and name the service that main.bicep tags for azd. The package azd publishes
(.funcignore) must hold the app and the operator console's files, and the optional Entra ID sign-in in front of the
console must leave every other route of the gateway open to its own callers.
"""
import re
import subprocess
from functools import cache

import pytest
import yaml
from pycep import BicepParser

from sms.config import PROJECT_ROOT
from sms.entrypoints.operator_console import ASSETS as CONSOLE_ASSETS
from sms.entrypoints.routes import ROUTES

BICEP = PROJECT_ROOT / "infra" / "main.bicep"
AZURE_YAML = PROJECT_ROOT / "azure.yaml"

_TEMPLATES = "https://learn.microsoft.com/azure/templates/"
# What main.bicep deploys, each pair as Microsoft's ARM template reference documents it (checked against the
# generated types behind those pages, Azure/bicep-types-az generated/<service>/<provider>/<version>/types.md).
# Moving to another API version means finding its page and changing the pair here with it.
KNOWN_GOOD = {
    "Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31":
        _TEMPLATES + "microsoft.managedidentity/2023-01-31/userassignedidentities",
    "Microsoft.Storage/storageAccounts@2023-05-01": _TEMPLATES + "microsoft.storage/2023-05-01/storageaccounts",
    "Microsoft.Storage/storageAccounts/blobServices@2023-05-01": _TEMPLATES + "microsoft.storage/2023-05-01/storageaccounts/blobservices",
    "Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01":
        _TEMPLATES + "microsoft.storage/2023-05-01/storageaccounts/blobservices/containers",
    "Microsoft.Storage/storageAccounts/tableServices@2023-05-01": _TEMPLATES + "microsoft.storage/2023-05-01/storageaccounts/tableservices",
    "Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01":
        _TEMPLATES + "microsoft.storage/2023-05-01/storageaccounts/tableservices/tables",
    "Microsoft.Storage/storageAccounts/queueServices@2023-05-01": _TEMPLATES + "microsoft.storage/2023-05-01/storageaccounts/queueservices",
    "Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01":
        _TEMPLATES + "microsoft.storage/2023-05-01/storageaccounts/queueservices/queues",
    "Microsoft.Authorization/roleAssignments@2022-04-01": _TEMPLATES + "microsoft.authorization/2022-04-01/roleassignments",
    "Microsoft.OperationalInsights/workspaces@2023-09-01": _TEMPLATES + "microsoft.operationalinsights/2023-09-01/workspaces",
    "Microsoft.Insights/components@2020-02-02": _TEMPLATES + "microsoft.insights/2020-02-02/components",
    "Microsoft.Communication/communicationServices@2023-04-01": _TEMPLATES + "microsoft.communication/2023-04-01/communicationservices",
    "Microsoft.KeyVault/vaults@2023-07-01": _TEMPLATES + "microsoft.keyvault/2023-07-01/vaults",
    "Microsoft.KeyVault/vaults/secrets@2023-07-01": _TEMPLATES + "microsoft.keyvault/2023-07-01/vaults/secrets",
    "Microsoft.Web/serverfarms@2024-04-01": _TEMPLATES + "microsoft.web/2024-04-01/serverfarms",
    "Microsoft.Web/sites@2024-04-01": _TEMPLATES + "microsoft.web/2024-04-01/sites",
    # sites/config takes one of several shapes by its name; main.bicep deploys only 'authsettingsV2' (listed for 2024-04-01
    # in bicep-types-az generated/web/microsoft.web/2024-04-01/types.md).
    "Microsoft.Web/sites/config@2024-04-01": _TEMPLATES + "microsoft.web/2024-04-01/sites/config-authsettingsv2",
}

# azd finds the resource to publish a service to by this tag (azure-dev: cli/azd/pkg/azure/tags.go, TagKeyAzdServiceName).
AZD_SERVICE_TAG = "azd-service-name"


@cache
def _parser() -> BicepParser:
    return BicepParser(cache=False)  # building the grammar is the slow part (~0.6 s); no cache file left in /tmp


def parse(bicep_text: str) -> dict:
    """pycep's JSON form of a Bicep file; raises on a syntax error."""
    return _parser().parse(text=bicep_text)


def declared_pairs(parsed: dict) -> set[str]:
    assert not parsed.get("modules"), "main.bicep declares modules: check their resources here too"
    return {f"{resource['type']}@{resource['api_version']}" for resource in parsed["resources"].values()}


def _body(resource: dict) -> dict:
    """A resource's own properties: pycep wraps those of a conditional (if) or looped (for) resource one level down."""
    config = resource["config"]
    return config["config"] if "condition" in config or "loop_type" in config else config


def azd_tagged(parsed: dict) -> dict[str, str]:
    """Symbolic name -> the azd-service-name tag, for each resource that carries one."""
    tagged = {}
    for name, resource in parsed["resources"].items():
        tags = _body(resource).get("tags") or {}
        for key, value in tags.items():
            if key.strip("'") == AZD_SERVICE_TAG:
                tagged[name] = value
    return tagged


def mutated(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the mutation must hit exactly one place: {old!r}"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def bicep_text() -> str:
    return BICEP.read_text()


@pytest.fixture(scope="module")
def azure_yaml() -> dict:
    return yaml.safe_load(AZURE_YAML.read_text())


def test_every_resource_type_and_api_version_in_main_bicep_is_a_known_good_pair(bicep_text):
    declared = declared_pairs(parse(bicep_text))
    assert declared - KNOWN_GOOD.keys() == set(), "not in Microsoft's template reference as listed here"
    assert KNOWN_GOOD.keys() - declared == set(), "listed here but no longer deployed: drop it"


@pytest.mark.parametrize("old, new", [
    ("'Microsoft.Web/sites@2024-04-01'", "'Microsoft.Web/site@2024-04-01'"),  # a type misspelt
    ("'Microsoft.KeyVault/vaults@2023-07-01'", "'Microsoft.KeyVault/vaults@2023-07-10'"),  # a version mistyped
    ("'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01'",
     "'Microsoft.Storage/storageAccounts/tableService/tables@2023-05-01'"),  # a child type's path misspelt
])
def test_a_mistyped_resource_type_or_api_version_fails_the_check(bicep_text, old, new):
    declared = declared_pairs(parse(mutated(bicep_text, old, new)))
    assert declared - KNOWN_GOOD.keys() == {new.strip("'")}


def test_a_bicep_syntax_error_fails_the_parse(bicep_text):
    with pytest.raises(Exception):  # noqa: B017 - lark raises its own error types, wrapped by pycep
        parse(mutated(bicep_text, "resource app 'Microsoft.Web/sites@2024-04-01' = {", "resource app Microsoft.Web/sites@2024-04-01 = {"))


def test_azure_yaml_provisions_main_bicep_and_publishes_this_folder_to_a_python_function_app(azure_yaml):
    # The shape azd's schema asks for: schemas/v1.0/azure.yaml.json in Azure/azure-dev.
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", azure_yaml["name"])
    infra = azure_yaml["infra"]
    assert infra.get("provider", "bicep") == "bicep"
    assert (PROJECT_ROOT / infra.get("path", "infra") / f"{infra.get('module', 'main')}.bicep") == BICEP
    [(name, service)] = azure_yaml["services"].items()
    assert (service["host"], service["language"]) == ("function", "python")
    assert (PROJECT_ROOT / service["project"]).resolve() == PROJECT_ROOT.resolve()
    assert (PROJECT_ROOT / service["project"] / "function_app.py").is_file()


def test_the_azure_yaml_service_is_the_function_app_main_bicep_tags_for_azd(bicep_text, azure_yaml):
    parsed = parse(bicep_text)
    tagged = azd_tagged(parsed)
    assert set(tagged.values()) == set(azure_yaml["services"]), "azd would find no resource to publish a service to"
    # One resource per service: azd refuses a tag more than one resource carries (azure-dev: cli/azd/pkg/project/resource_manager.go).
    [symbol] = tagged
    assert parsed["resources"][symbol]["type"] == "Microsoft.Web/sites"
    assert "functionapp" in _body(parsed["resources"][symbol])["kind"]


def test_a_service_name_that_differs_from_the_tag_fails_the_check(bicep_text):
    renamed = yaml.safe_load(mutated(AZURE_YAML.read_text(), "  gateway:\n", "  api:\n"))
    assert set(azd_tagged(parse(bicep_text)).values()) != set(renamed["services"])
    untagged = parse(mutated(bicep_text, "tags: { 'azd-service-name': 'gateway' }", "tags: { 'azd-env-name': 'gateway' }"))
    assert azd_tagged(untagged) == {}


def test_azds_own_files_stay_out_of_git_and_of_the_published_package():
    # .azure/ holds each azd environment's values (azd env set, the deployment's outputs). azd itself never
    # zips it (azure-dev project_utils.go), but `func azure functionapp publish` reads only .funcignore.
    funcignore = (PROJECT_ROOT / ".funcignore").read_text().split()
    assert {".azure/", "azure.yaml"} <= set(funcignore)
    assert ".azure/" in (PROJECT_ROOT / ".gitignore").read_text().split()


def test_main_bicep_creates_every_table_and_queue_the_gateway_uses():
    """The gateway creates what is missing at start, but main.bicep's lists are what a deployment keeps
    (and what a reviewer reads): a table or queue added to the code must be added there too."""
    from sms.config import ACCEPT_QUEUE, SEND_QUEUE, WEBHOOK_QUEUE
    from sms.storage import guard_blocks, idempotency, inbound, ledger, licensees, optout_index, pending, spend, tables, webhook_tables

    modules = (guard_blocks, idempotency, inbound, ledger, licensees, pending, spend, tables, webhook_tables, optout_index)
    used_tables = {getattr(module, name) for module in modules
                   for name in dir(module) if name.endswith("_TABLE")}
    used_queues = {q for queue in (SEND_QUEUE, ACCEPT_QUEUE, WEBHOOK_QUEUE) for q in (queue, f"{queue}-poison")}
    text = BICEP.read_text()

    def listed(var: str) -> set[str]:
        return set(re.findall(r"'([^']+)'", re.search(rf"^var {var} = \[(.*)\]$", text, re.MULTILINE).group(1)))

    assert listed("tables") == used_tables
    assert listed("queues") == used_queues


def test_main_bicep_outputs_the_consoles_url_on_the_apps_own_host():
    outputs = parse(BICEP.read_text())["outputs"]
    assert outputs["AZURE_CONSOLE_URL"]["value"] == outputs["AZURE_FUNCTION_URL"]["value"] + "/console"
    console = next(route for route in ROUTES if route.kind == "console" and "{" not in route.path)
    assert outputs["AZURE_CONSOLE_URL"]["value"].endswith("/" + console.path)


def test_the_commid_key_is_made_once_kept_in_key_vault_and_read_back_by_azd_on_every_later_deployment(bicep_text):
    """SMS_COMMID_KEY must stay the same from one deployment to the next: a message accepted in one storage call is
    recognised by its key until the worker writes it (issue 30). A param defaulting to newGuid() alone would make a
    new key at every deployment; azd's secretOrRandomPassword reads the vault's secret back instead, and makes a
    random one only while the vault or the secret is not there (azure-dev: cli/azd/pkg/cmdsubst/secretOrRandomPassword.go).
    That one is 15 characters (5 lower, 5 upper, 5 digits: cli/azd/pkg/password/generator.go), under sms/config.py's
    32, so the first deployment adds a GUID to it; the 51 characters kept are read back whole ever after."""
    import json

    from sms.config import MIN_COMMID_KEY_CHARS

    parameters = json.loads((PROJECT_ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    assert parameters["commIdKey"]["value"] == "$(secretOrRandomPassword ${AZURE_KEY_VAULT_NAME} commid-key)"
    assert "output AZURE_KEY_VAULT_NAME string = vault.name\n" in bicep_text  # azd keeps outputs in its environment
    assert re.search(r"@secure\(\)\n@description\([^\n]*\)\nparam commIdKey string = ''\n", bicep_text)
    assert re.search(r"@secure\(\)\n@description\([^\n]*\)\nparam commIdKeyFiller string = newGuid\(\)\n", bicep_text)
    completed = f"var commIdKeyValue = length(commIdKey) >= {MIN_COMMID_KEY_CHARS} ? commIdKey : '${{commIdKey}}${{commIdKeyFiller}}'"
    assert completed in bicep_text
    assert re.search(r"name: 'commid-key'\n  properties: \{ value: commIdKeyValue \}", bicep_text)
    assert "{ name: 'SMS_COMMID_KEY', value: '${secretReference}commid-key)' }" in bicep_text
    assert "{ name: 'SMS_ACCEPT_ONE_CALL', value: acceptOneCall }" in bicep_text


# --- What azd publishes: the folder, less what .funcignore lists (gitignore syntax: learn.microsoft.com/azure/developer/
# azure-developer-cli/service-packaging-ignore-files). git's own matcher reads it here, so the patterns mean what they mean to git.

def published(funcignore: str) -> set[str]:
    """The tracked files a package made with this .funcignore would hold."""
    def tracked(*options: str) -> set[str]:
        out = subprocess.run(["git", "ls-files", "-c", *options], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
        return set(out.splitlines())
    return tracked() - tracked("-i", f"--exclude-from={funcignore}")


def test_the_published_package_is_the_app_with_every_file_of_the_operator_console():
    package = published(str(PROJECT_ROOT / ".funcignore"))
    console = {path.relative_to(PROJECT_ROOT).as_posix() for path in CONSOLE_ASSETS.iterdir()}
    assert {"index.html", "app.js", "style.css", "favicon.svg"} <= {name.rsplit("/", 1)[-1] for name in console}
    assert console - package == set(), "the console's files would not reach Azure"
    assert {"function_app.py", "host.json", "requirements.txt"} <= package
    # Only the app: what .funcignore's header promises (its own file aside, which the host ignores).
    assert {path.split("/")[0] for path in package} == {"function_app.py", "host.json", "requirements.txt", "sms", ".funcignore"}
    assert not any(path.startswith("sms/dev/") for path in package)


@pytest.mark.parametrize("line", [
    "*.js",  # a rule meant for built front-end bundles
    "sms/operator_console/",  # the console left to a CDN
    "sms/**/*.*\n!*.py",  # "ship only the Python"
])
def test_a_funcignore_that_drops_console_files_fails_the_check(tmp_path, line):
    funcignore = tmp_path / ".funcignore"
    funcignore.write_text((PROJECT_ROOT / ".funcignore").read_text() + line + "\n")
    console = {path.relative_to(PROJECT_ROOT).as_posix() for path in CONSOLE_ASSETS.iterdir()}
    assert console - published(str(funcignore)) != set()


# --- The optional App Service Authentication (Entra ID) in front of the console.

def console_sign_in(parsed: dict) -> dict:
    [resource] = [r for r in parsed["resources"].values()
                  if r["type"] == "Microsoft.Web/sites/config" and _body(r)["name"] == "authsettingsV2"]
    return resource


def excluded_paths(parsed: dict) -> list[str]:
    return _body(console_sign_in(parsed))["properties"]["globalValidation"]["excludedPaths"]


def excluded(route_path: str, patterns: list[str]) -> bool:
    """Whether every URL of a route (a template under the empty routePrefix) is one Easy Auth lets through: a pattern is a
    path, or a folder ending '/*' (configure-authentication-file-based.md: "/path1", "/path3/subpath/*"). A route is
    covered by a folder when its literal start lies inside it, and by a path only when it has no parameter."""
    url = "/" + route_path
    literal = url.split("{", 1)[0]
    for pattern in patterns:
        if pattern.endswith("/*") and literal.startswith(pattern[:-1]):
            return True
        if pattern == url and "{" not in url:
            return True
    return False


def test_the_console_sign_in_is_off_unless_a_client_id_is_given(bicep_text):
    parsed = parse(bicep_text)
    assert parsed["parameters"]["consoleEntraClientId"]["default"] == ""
    condition = console_sign_in(parsed)["config"]["condition"]
    assert condition == {"operator": {"type": "not", "operands": {"bool_value": {
        "function": {"type": "empty", "parameters": {"item_to_test": "consoleEntraClientId"}}}}}}


def test_the_console_sign_in_sends_a_stranger_to_the_entra_login_page(bicep_text):
    settings = _body(console_sign_in(parse(bicep_text)))["properties"]
    assert settings["platform"]["enabled"] is True
    validation = settings["globalValidation"]
    assert (validation["requireAuthentication"], validation["unauthenticatedClientAction"]) == (True, "RedirectToLoginPage")
    assert settings["identityProviders"]["azureActiveDirectory"]["registration"]["clientId"] == "consoleEntraClientId"


def test_every_route_but_the_consoles_is_left_out_of_the_sign_in(bicep_text):
    """API clients, ServiceStack clients and the vendors' callbacks must never meet a login page: each route of the
    gateway that is not the console's lies under an excluded path, so a new route at the root fails here until it is too."""
    patterns = excluded_paths(parse(bicep_text))
    others = [route for route in ROUTES if route.kind != "console"]
    assert [route.path for route in others if not excluded(route.path, patterns)] == []
    assert {"api/sms/receipts/acs", "api/sms/inbound/twilio", "json/reply/{operation}", "types", "metadata"} <= {r.path for r in others}


def test_the_consoles_own_routes_stay_behind_the_sign_in(bicep_text):
    patterns = excluded_paths(parse(bicep_text))
    console = [route for route in ROUTES if route.kind == "console"]
    assert {route.path for route in console} == {"console", "console/{asset}"}
    assert [route.path for route in console if excluded(route.path, patterns)] == []
    assert not any(excluded(path, patterns) for path in ("console", "console/app.js", "console/index.html"))


@pytest.mark.parametrize("old, new, uncovered", [
    ("'/types'", "'/typez'", "types"),  # an exact path misspelt
    ("'/json/*'", "'/json'", "json/reply/{operation}"),  # a folder written as a path
])
def test_a_route_left_behind_the_sign_in_fails_the_check(bicep_text, old, new, uncovered):
    patterns = excluded_paths(parse(mutated(bicep_text, old, new)))
    assert uncovered in [route.path for route in ROUTES if route.kind != "console" and not excluded(route.path, patterns)]


def test_a_folder_pattern_that_would_swallow_the_console_fails_the_check():
    assert excluded("console/{asset}", ["/console/*"])
    assert excluded("console", ["/console"])
    assert not excluded("console", ["/con/*"])
