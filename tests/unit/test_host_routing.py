"""Every documented URL reaches its own function under the Azure Functions host's routing rule.

The host tries HTTP functions in name order (OrdinalIgnoreCase) and the first route whose template
and methods match wins; it does not rank literal routes above parameters (azure-functions-host
#3153, #9876; azure-webjobs-sdk-extensions PR #842). sms.dev.host.routing imitates that rule, and
its own tests (test_devhost_routing.py) pin it. Here the app's real registrations
(`app.get_functions()`) are read and every (method, URL) README documents is routed.
"""
import random
import re

import pytest

from sms.config import PROJECT_ROOT, host_json
from sms.dev.host.app import read_app
from sms.dev.host.routing import kestrel_path, route_table, select

GUID = "e1f6be64733348e3b37055b6c0fd9ebe"
HOOK = "5d41402abc4b2a76b9719d911017c592"  # a webhook endpoint's id
KEY = "0123456789abcdef"  # an API key's id
GUID_FORMS = (GUID, GUID.upper(), "e1f6be64-7333-48e3-b370-55b6c0fd9ebe", "{E1F6BE64-7333-48E3-B370-55B6C0FD9EBE}")
SEND_ROUTES = {  # path -> (function for the path, function for the path with a format suffix)
    "/api/sendmessage": ("send_message", "send_message_with_format"),
    "/api/send": ("send", "send_with_format"),
    "/api/sms/send": ("sms_send", "sms_send_with_format"),
    "/api/SMSSend": ("sms_send_servicestack", "sms_send_servicestack_with_format"),
    "/api/sendmessage/immediate": ("send_message_immediate", "send_message_immediate_with_format"),
    "/api/send/immediate": ("send_immediate", "send_immediate_with_format"),
    "/api/sms/send/immediate": ("sms_send_immediate", "sms_send_immediate_with_format"),
    # Not a send, but answers a send's body (issue 27), with the same methods and suffixes.
    "/api/sms/estimate": ("sms_estimate", "sms_estimate_with_format"),
}
# Methods a send route must answer itself (405 with Allow: POST), not leave to the host's 404.
NOT_ALLOWED = ("GET", "PUT", "PATCH", "DELETE")

DOCUMENTED: dict[tuple[str, str], str] = {
    **{("POST", path): names[0] for path, names in SEND_ROUTES.items()},
    **{(method, path): names[0] for path, names in SEND_ROUTES.items() for method in NOT_ALLOWED},
    **{(method, f"{path}.{suffix}"): names[1] for path, names in SEND_ROUTES.items()
       for suffix in ("json", "jsv", "JSON", "xml") for method in ("POST", *NOT_ALLOWED)},  # .xml: the function's 404
    ("POST", "/json/reply/SMSSend"): "json_reply",
    ("POST", "/jsv/reply/SMSSend"): "jsv_reply",
    ("GET", "/json/reply/SMSSend"): "json_reply",
    ("POST", "/api/SMSSend[]"): "sms_send_servicestack_batch",
    ("POST", "/api/smssend[]"): "sms_send_servicestack_batch",
    ("GET", "/api/SMSSend[]"): "sms_send_servicestack_batch",
    ("POST", "/json/reply/SMSSend[]"): "json_reply",
    ("POST", "/jsv/reply/SMSSend[]"): "jsv_reply",
    **{("GET", f"/api/sms/{guid}"): "sms_status" for guid in GUID_FORMS},
    **{("GET", f"/api/sms/{GUID}.{suffix}"): "sms_status" for suffix in ("json", "jsv", "xml")},  # .xml: the function's 404
    **{("GET", f"/api/sms/{guid}/replies"): "sms_replies" for guid in GUID_FORMS},
    # The status route's URL, DELETE: cancel (its own function; first-match routing goes by the method too).
    **{("DELETE", f"/api/sms/{guid}"): "sms_cancel" for guid in GUID_FORMS},
    **{("DELETE", f"/api/sms/{GUID}.{suffix}"): "sms_cancel" for suffix in ("json", "jsv", "xml")},  # .xml: the function's 404
    ("DELETE", f"/api/SMS/{GUID}/"): "sms_cancel",
    ("GET", "/api/sms"): "sms_list",
    ("GET", "/api/SMS/"): "sms_list",
    **{("GET", f"/api/sms.{suffix}"): "sms_list_with_format" for suffix in ("json", "jsv", "xml")},  # .xml: the function's 404
    ("GET", "/api/usage"): "usage",
    ("GET", "/api/providers"): "providers",
    **{("GET", f"/api/usage.{suffix}"): "usage_with_format" for suffix in ("json", "jsv")},
    ("GET", "/api/webhooks"): "webhooks_list",
    ("POST", "/api/webhooks"): "webhooks_add",
    ("DELETE", f"/api/webhooks/{HOOK}"): "webhooks_remove",
    ("DELETE", f"/api/webhooks/{HOOK.upper()}"): "webhooks_remove",
    ("POST", f"/api/webhooks/{HOOK}/rotate-secret"): "webhooks_rotate_secret",
    ("POST", f"/api/webhooks/{HOOK}/enable"): "webhooks_enable",
    ("GET", f"/api/webhooks/{HOOK}/deliveries"): "webhooks_deliveries",
    ("GET", f"/api/webhooks/{HOOK.upper()}/Deliveries/"): "webhooks_deliveries",
    ("POST", f"/api/webhooks/{HOOK}/replay"): "webhooks_replay",
    ("GET", "/api/routes"): "routes_show",
    ("PUT", "/api/routes"): "routes_set",
    ("DELETE", "/api/routes"): "routes_clear",
    ("PUT", "/API/Routes/"): "routes_set",
    ("GET", "/api/guard"): "guard_show",
    ("PUT", "/api/guard"): "guard_set",
    ("DELETE", "/api/guard"): "guard_clear",
    # The licensee's own settings (issue 29): GET and PUT, one function each.
    ("GET", "/api/settings"): "settings_show",
    ("PUT", "/api/settings"): "settings_set",
    ("PUT", "/API/Settings/"): "settings_set",
    ("GET", "/api/GetLicenseeSettings"): "op_get_licensee_settings",
    ("PUT", "/api/SetLicenseeSettings"): "op_set_licensee_settings",
    # API keys (issue 29).
    ("GET", "/api/keys/current"): "keys_current",
    ("GET", "/API/Keys/Current/"): "keys_current",
    ("GET", "/api/keys"): "keys_list",
    ("POST", "/api/keys"): "keys_create",
    ("POST", f"/api/keys/{KEY}/rotate"): "keys_rotate",
    ("POST", f"/api/keys/{KEY.upper()}/Rotate/"): "keys_rotate",
    ("DELETE", f"/api/keys/{KEY}"): "keys_revoke",
    ("GET", "/api/GetCurrentApiKey"): "op_get_current_api_key",
    ("POST", "/api/CreateApiKey"): "op_create_api_key",
    ("DELETE", "/api/RevokeApiKey"): "op_revoke_api_key",
    ("POST", "/api/sms/receipts/acs"): "receipts_acs",
    ("OPTIONS", "/api/sms/receipts/acs"): "receipts_acs",
    ("POST", "/api/sms/receipts/twilio"): "receipts_twilio",
    ("POST", "/api/sms/inbound/twilio"): "inbound_twilio",
    ("GET", "/api/health"): "health",
    ("GET", "/api/openapi.json"): "openapi",
    ("GET", "/api/metadata"): "metadata",
    # ServiceStack's Add Reference and metadata pages (issue 28), at the root.
    ("GET", "/types"): "types",
    ("GET", "/types/metadata"): "types_metadata",
    ("GET", "/types/typescript"): "types_typescript",
    ("GET", "/types/python"): "types_python",
    ("GET", "/types/csharp"): "types_csharp",
    ("GET", "/Types/CSharp/"): "types_csharp",
    ("GET", "/metadata"): "metadata_operations",
    ("GET", "/json/metadata"): "json_metadata",
    ("GET", "/jsv/metadata"): "jsv_metadata",
    # The operator console (issue 29): its page, and its files by their flat names.
    ("GET", "/console"): "console",
    ("GET", "/Console/"): "console",
    ("GET", "/console/app.js"): "console_asset",
    ("GET", "/console/style.css"): "console_asset",
    ("GET", "/console/favicon.svg"): "console_asset",
    # ServiceStack's /api/{Operation} for each operation (its own function; every method, a wrong one answered 405).
    ("GET", "/api/GetSmsStatus"): "op_get_sms_status",
    ("POST", "/api/getsmsstatus"): "op_get_sms_status",
    ("GET", "/api/QuerySms"): "op_query_sms",
    ("DELETE", "/api/CancelSms"): "op_cancel_sms",
    ("POST", "/api/EstimateSms"): "op_estimate_sms",
    ("POST", "/api/ReplayWebhookEvents"): "op_replay_webhook_events",
    ("PUT", "/api/SetGuard"): "op_set_guard",
    # Case and a trailing slash do not matter to the host.
    ("POST", "/API/SEND"): "send",
    ("POST", "/api/send/"): "send",
    ("GET", f"/api/sms/{GUID}/"): "sms_status",
    ("POST", "/API/SMS/Estimate/"): "sms_estimate",
    # opt-outs (issue 29): one function a method on api/optouts; the history's number in the query.
    ("GET", "/api/optouts"): "optouts_list",
    ("POST", "/api/optouts"): "optouts_add",
    ("DELETE", "/api/optouts"): "optouts_remove",
    ("GET", "/api/optouts/history"): "optouts_history",
    ("GET", "/API/OptOuts/History/"): "optouts_history",
    ("GET", "/api/QueryOptOuts"): "op_query_opt_outs",
    ("GET", "/api/GetOptOutHistory"): "op_get_opt_out_history",
    ("POST", "/api/AddOptOut"): "op_add_opt_out",
    ("DELETE", "/api/RemoveOptOut"): "op_remove_opt_out",
    # Issue 29: every licensee (admin keys only), and a message's webhook events.
    ("GET", "/api/licensees"): "licensees_list",
    ("GET", "/API/Licensees/"): "licensees_list",
    ("GET", "/api/QueryLicensees"): "op_query_licensees",
    **{("GET", f"/api/sms/{guid}/events"): "sms_events" for guid in GUID_FORMS},
    ("GET", "/api/GetSmsEvents"): "op_get_sms_events",
}
# URLs no function may take: the host answers them with its own 404.
NOT_ROUTED = [
    ("OPTIONS", "/api/sms/send"), ("HEAD", "/api/sms/send.json"), ("GET", "/api/sms/receipts"), ("GET", "/api/sms/not-a-guid"),
    ("GET", f"/api/sms/{GUID}x"), ("GET", "/api/sms/send/replies"), ("POST", f"/api/sms/{GUID}"), ("PUT", f"/api/sms/{GUID}"),
    ("PATCH", f"/api/sms/{GUID}"), ("DELETE", f"/api/sms/{GUID}x"), ("DELETE", f"/api/sms/{GUID}/replies"), ("DELETE", "/api/sms/receipts"),
    ("DELETE", "/api/sms/not-a-guid"), ("DELETE", "/api/sms/receipts/acs"), ("DELETE", f"/api/sms/{GUID}.json/x"),
    ("GET", "/api/sms/receipts/acs"), ("GET", "/api/unknown"), ("POST", "/api/SMSSend[].json"), ("HEAD", "/api/health"),
    ("POST", "/api/send//"), ("GET", "/api/health/extra"), ("POST", "/api/sms"), ("DELETE", "/api/sms"), ("GET", "/api/sms.json/x"),
    ("PUT", "/api/webhooks"), ("DELETE", "/api/webhooks"), ("GET", f"/api/webhooks/{HOOK}"), ("POST", f"/api/webhooks/{HOOK}"),
    ("DELETE", "/api/webhooks/not-an-id"), ("DELETE", f"/api/webhooks/{GUID_FORMS[2]}"), ("POST", "/api/webhooks/enable/enable"),
    ("GET", f"/api/webhooks/{HOOK}/enable"), ("POST", f"/api/webhooks/{HOOK}x/rotate-secret"), ("POST", f"/api/webhooks/{HOOK}/rotate"),
    ("POST", f"/api/webhooks/{HOOK}/deliveries"), ("DELETE", f"/api/webhooks/{HOOK}/deliveries"), ("GET", f"/api/webhooks/{HOOK}/replay"),
    ("GET", "/api/webhooks/deliveries"), ("GET", f"/api/webhooks/{GUID_FORMS[2]}/deliveries"), ("POST", f"/api/webhooks/{HOOK}x/replay"),
    ("POST", "/api/webhooks/replay/replay"), ("GET", f"/api/webhooks/{HOOK}/deliveries/x"),
    ("POST", "/api/routes"), ("PATCH", "/api/routes"), ("GET", "/api/routes/x"), ("GET", "/api/routes.json"),
    ("GET", "/types/java"), ("POST", "/types/typescript"), ("GET", "/metadata/x"), ("GET", "/xml/metadata"), ("HEAD", "/api/QuerySms"),
    ("GET", "/api/SMSSend/x"), ("GET", "/api/GetSmsStatus/e1f6be64733348e3b37055b6c0fd9ebe"),
    ("GET", "/api/sms/estimate/replies"), ("POST", "/api/sms/estimate/x"), ("OPTIONS", "/api/sms/estimate"),
    ("POST", "/api/settings"), ("PATCH", "/api/settings"), ("DELETE", "/api/settings"), ("GET", "/api/settings/x"),
    ("GET", "/api/settings.json"),
    # The console: no file in a folder, none of another kind, nothing but GET.
    ("GET", "/console/pages/app.js"), ("GET", "/console/app.ts"), ("GET", "/console/.js"), ("GET", "/console/index.html/x"),
    ("POST", "/console"), ("HEAD", "/console"), ("DELETE", "/console/app.js"),
    # API keys: a key id is 16 hex digits, and "current" is only read.
    ("PUT", "/api/keys"), ("DELETE", "/api/keys"), ("GET", f"/api/keys/{KEY}"), ("POST", f"/api/keys/{KEY}"),
    ("DELETE", "/api/keys/current"), ("POST", "/api/keys/current"), ("POST", "/api/keys/current/rotate"),
    ("DELETE", f"/api/keys/{KEY}x"), ("DELETE", f"/api/keys/{KEY[:-1]}"), ("DELETE", f"/api/keys/sms_{KEY}"),
    ("POST", f"/api/keys/{KEY}/revoke"), ("GET", f"/api/keys/{KEY}/rotate"), ("DELETE", f"/api/keys/{HOOK}"),
    ("GET", "/api/keys.json"), ("GET", "/api/keys/current/x"),
    # opt-outs: no number in the path, and the history is only read.
    ("PUT", "/api/optouts"), ("PATCH", "/api/optouts"), ("GET", "/api/optouts/+61412000001"), ("DELETE", "/api/optouts/history"),
    ("POST", "/api/optouts/history"), ("GET", "/api/optouts.json"), ("GET", "/api/optouts/history/x"),
    # Issue 29: the licensee list is only read; a message's events only by a Guid.
    ("POST", "/api/licensees"), ("DELETE", "/api/licensees"), ("GET", "/api/licensees/x"), ("GET", "/api/licensees.json"),
    ("GET", "/api/sms/send/events"), ("GET", "/api/sms/estimate/events"), ("GET", f"/api/sms/{GUID}x/events"),
    ("GET", f"/api/sms/{GUID}.json/events"), ("POST", f"/api/sms/{GUID}/events"), ("DELETE", f"/api/sms/{GUID}/events"),
    ("GET", f"/api/sms/{GUID}/events/x"),
]


@pytest.fixture(scope="module")
def app_routes(indexed_functions):
    prefix = host_json().get("extensions", {}).get("http", {}).get("routePrefix", "api")
    routes, _, _ = read_app(indexed_functions.values(), prefix)
    return routes


def _matches(table, method, path):
    path = kestrel_path(path)
    return [r.name for r in table if r.admits(method) and r.template.match(path) is not None]


@pytest.mark.parametrize("method, path", list(DOCUMENTED), ids=[f"{m} {p}" for m, p in DOCUMENTED])
def test_each_documented_url_reaches_its_function(app_routes, method, path):
    table = route_table(app_routes)
    assert len(table) == len(app_routes)  # the host loads every route: none reserved or conflicting
    chosen = select(table, method, kestrel_path(path))
    assert chosen is not None and chosen[0].name == DOCUMENTED[method, path]


@pytest.mark.parametrize("method, path", list(DOCUMENTED), ids=[f"{m} {p}" for m, p in DOCUMENTED])
def test_no_other_route_matches_a_documented_url_so_function_names_cannot_change_the_answer(app_routes, method, path):
    assert _matches(app_routes, method, path) == [DOCUMENTED[method, path]]


def test_any_order_of_function_names_routes_every_url_the_same(app_routes):
    rng = random.Random(11)
    orders = [list(reversed(route_table(app_routes)))] + [rng.sample(app_routes, len(app_routes)) for _ in range(20)]
    for order in orders:  # as if the functions were renamed so that they sort this way
        for (method, path), expected in DOCUMENTED.items():
            assert select(order, method, kestrel_path(path))[0].name == expected


@pytest.mark.parametrize("method, path", NOT_ROUTED, ids=[f"{m} {p}" for m, p in NOT_ROUTED])
def test_urls_outside_the_api_reach_no_function(app_routes, method, path):
    assert _matches(app_routes, method, path) == []


def test_the_status_route_gets_the_comm_id_and_suffix_as_written(app_routes):
    route, values = select(route_table(app_routes), "GET", kestrel_path(f"/api/sms/{GUID_FORMS[3]}.jsv"))
    assert route.name == "sms_status" and values == {"commId": f"{GUID_FORMS[3]}.jsv"}


def test_the_cancel_route_gets_the_comm_id_and_suffix_as_written_and_the_send_routes_keep_their_405s(app_routes):
    table = route_table(app_routes)
    route, values = select(table, "DELETE", kestrel_path(f"/api/sms/{GUID_FORMS[2]}.jsv"))
    assert route.name == "sms_cancel" and values == {"commId": f"{GUID_FORMS[2]}.jsv"}
    # DELETE /api/sms/send is not a message to cancel: it stays the send route's 405 (its name sorts after sms_cancel).
    for path in ("/api/sms/send", "/api/sms/send.json", "/api/sms/send/immediate"):
        assert select(table, "DELETE", kestrel_path(path))[0].name.startswith("sms_send")


def test_every_route_in_readmes_api_table_is_checked_here():
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme[readme.index("| Method and route |"):]
    table = table[:table.index("\n\n")]
    documented = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        method = re.match(r"\s*`(\w+) ", first_cell).group(1)
        for path in re.findall(r"`(?:\w+ )?(/[^`]*)`", first_cell):
            documented.add((method, path.replace("{commId}", GUID).replace("{endpointId}", HOOK).replace("{keyId}", KEY)))
    assert len(documented) >= 19
    assert documented <= set(DOCUMENTED), documented - set(DOCUMENTED)
    # Every other URL README shows in passing (format suffixes, ...) too.
    paths = re.findall(r"`(?:[A-Z]+ )?(/(?:api|json|jsv)/[^`.]*(?:\.\w+)?)`", readme)
    mentioned = {p.replace("{commId}", GUID).replace("{endpointId}", HOOK).replace("{keyId}", KEY) for p in paths}
    assert len(mentioned) >= 20
    assert mentioned <= {path for _, path in DOCUMENTED}, mentioned - {path for _, path in DOCUMENTED}
