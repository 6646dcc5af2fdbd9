"""Every HTTP route the gateway serves, in one table: sms.entrypoints.api registers each as a function,
sms.openapi documents each. host.json's routePrefix is empty because ServiceStack's predefined
routes (/json/reply/..., /jsv/reply/...) live at the root; the rest carry "api/" themselves.

No two templates here match the same URL. The Functions host does not rank routes by
specificity: it tries them in the order of their functions' names and the first match wins
(sms/dev/host/routing.py has the sources), so an overlap would make a URL's function depend on
how names happen to sort. Parameters that share a prefix with literal routes are constrained
(`{commId:regex(...)}`), and ServiceStack's `/api/{Request}` is written out for the one
operation there is. tests/unit/test_host_routing.py checks every documented URL.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import azure.functions as func

from ..wire import Format

SEND_ROUTES = {  # function name -> path under /api: save and queue
    "send_message": "sendmessage",
    "send": "send",
    "sms_send": "sms/send",
    "sms_send_servicestack": "SMSSend",  # where ServiceStack clients post by default
}
IMMEDIATE_ROUTES = {  # save and send within the request
    "send_message_immediate": "sendmessage/immediate",
    "send_immediate": "send/immediate",
    "sms_send_immediate": "sms/send/immediate",
}
# Methods a send route answers: POST does the work, the others get 405 with Allow: POST
# (the Functions host would answer a method no function lists with a bare 404).
SEND_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# A commId in a path: a Guid in the forms parse_guid reads ("N", "D", "B"). Written for both readers:
# the host's regex constraint (.NET, case-insensitive anyway) and OpenAPI's pattern (ECMA, case-sensitive).
GUID_PATTERN = r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$"
# The status and cancel routes also take a format suffix (`.json`, `.jsv`; the function answers any other with 404).
GUID_WITH_SUFFIX_PATTERN = GUID_PATTERN[:-1] + r"(\.[a-zA-Z0-9]+)?$"
# A webhook endpoint's id in a path: 32 hex digits, as the gateway writes it (in any case).
ENDPOINT_ID_PATTERN = r"^[0-9a-fA-F]{32}$"
_ENDPOINT_ID = (("endpointId", ENDPOINT_ID_PATTERN),)
# An API key's id in a path: 16 hex digits, as the key carries it (sms_<keyId>.<secret>), in any case. Never
# "current": GET api/keys/current has a route of its own.
KEY_ID_PATTERN = r"^[0-9a-fA-F]{16}$"
_KEY_ID = (("keyId", KEY_ID_PATTERN),)
# A file of the operator console: a flat name of a kind it ships (sms.entrypoints.operator_console checks it again).
CONSOLE_ASSET_PATTERN = r"^[a-z0-9-]+\.(js|css|svg)$"


@dataclass(frozen=True)
class Route:
    name: str  # the function's name
    path: str  # the route as documented, under an empty routePrefix: 'api/sms/{commId}'
    # send | send_now | batch | reply | estimate | status | cancel | replies | list | usage | webhooks_* | routes_* | receipts_acs |
    # receipts_twilio | inbound_twilio | health | openapi | metadata: which work function answers it
    kind: str
    methods: tuple[str, ...] = ("POST",)
    format: Format | None = None  # fixed by the route: a predefined /json/reply or /jsv/reply route
    patterns: tuple[tuple[str, str], ...] = ()  # (parameter, regex): what the host lets into each parameter
    verb: str | None = None  # the one method that does the work, when the kind's own does not say (/api/{Operation}: its verb)

    @property
    def template(self) -> str:
        """The route the host is given: `path` with each pattern as a regex constraint. Braces in a
        parameter are doubled in a template (ASP.NET's RoutePatternParser)."""
        template = self.path
        for name, regex in self.patterns:
            template = template.replace("{%s}" % name, "{%s:regex(%s)}" % (name, regex.replace("{", "{{").replace("}", "}}")))
        return template

    @property
    def working_methods(self) -> tuple[str, ...]:
        """The methods that do the route's work; any other listed method is answered 405."""
        if self.verb:
            return (self.verb,)
        return ("POST",) if self.kind in ("send", "send_now", "batch", "reply", "estimate") else self.methods

    @property
    def has_format_suffix(self) -> bool:
        return self.path.endswith(".{format}")

    @property
    def comm_id_takes_suffix(self) -> bool:
        """Whether the commId in its path may carry a format suffix (`/api/sms/{commId}.jsv`)."""
        return ("commId", GUID_WITH_SUFFIX_PATTERN) in self.patterns


def _send_routes(names: dict[str, str], kind: str) -> list[Route]:
    routes = []
    for name, path in names.items():
        routes.append(Route(name, f"api/{path}", kind, SEND_METHODS))
        routes.append(Route(f"{name}_with_format", f"api/{path}.{{format}}", kind, SEND_METHODS))
    return routes


ROUTES: list[Route] = [
    *_send_routes(SEND_ROUTES, "send"),
    *_send_routes(IMMEDIATE_ROUTES, "send_now"),
    # ServiceStack's predefined routes: /api/{Request} (its clients' default: /api/SMSSend above,
    # and send_all's auto-batch /api/SMSSend[]) and the older /json/reply/{Request}, /jsv/reply/{Request}.
    Route("sms_send_servicestack_batch", "api/SMSSend[]", "batch", SEND_METHODS),
    Route("json_reply", "json/reply/{operation}", "reply", SEND_METHODS, Format.JSON),
    Route("jsv_reply", "jsv/reply/{operation}", "reply", SEND_METHODS, Format.JSV),
    # What a send would cost, nothing stored or sent (issue 27). No overlap with api/sms/{commId}: "estimate" is no Guid.
    Route("sms_estimate", "api/sms/estimate", "estimate", SEND_METHODS),
    Route("sms_estimate_with_format", "api/sms/estimate.{format}", "estimate", SEND_METHODS),
    Route("sms_status", "api/sms/{commId}", "status", ("GET",), patterns=(("commId", GUID_WITH_SUFFIX_PATTERN),)),
    # Cancel what of a message has not gone yet (issue 16): the status route's URL, its own function and method.
    Route("sms_cancel", "api/sms/{commId}", "cancel", ("DELETE",), patterns=(("commId", GUID_WITH_SUFFIX_PATTERN),)),
    Route("sms_replies", "api/sms/{commId}/replies", "replies", ("GET",), patterns=(("commId", GUID_PATTERN),)),
    # The licensee's messages, newest first, with filters (the message ledger).
    Route("sms_list", "api/sms", "list", ("GET",)),
    Route("sms_list_with_format", "api/sms.{format}", "list", ("GET",)),
    # What the licensee sent, per day.
    Route("usage", "api/usage", "usage", ("GET",)),
    Route("usage_with_format", "api/usage.{format}", "usage", ("GET",)),
    # The licensee's webhook endpoints (issue 15): one function a method, so no two match one request.
    Route("webhooks_list", "api/webhooks", "webhooks_list", ("GET",)),
    Route("webhooks_add", "api/webhooks", "webhooks_add", ("POST",)),
    Route("webhooks_remove", "api/webhooks/{endpointId}", "webhooks_remove", ("DELETE",), patterns=_ENDPOINT_ID),
    Route("webhooks_rotate_secret", "api/webhooks/{endpointId}/rotate-secret", "webhooks_rotate_secret", ("POST",), patterns=_ENDPOINT_ID),
    Route("webhooks_enable", "api/webhooks/{endpointId}/enable", "webhooks_enable", ("POST",), patterns=_ENDPOINT_ID),
    # An endpoint's delivery log, and sending its events again.
    Route("webhooks_deliveries", "api/webhooks/{endpointId}/deliveries", "webhooks_deliveries", ("GET",), patterns=_ENDPOINT_ID),
    Route("webhooks_replay", "api/webhooks/{endpointId}/replay", "webhooks_replay", ("POST",), patterns=_ENDPOINT_ID),
    # The licensee's own routing table (issue 26): one function a method, as for /api/webhooks.
    Route("routes_show", "api/routes", "routes_show", ("GET",)),
    Route("routes_set", "api/routes", "routes_set", ("PUT",)),
    Route("routes_clear", "api/routes", "routes_clear", ("DELETE",)),
    # The licensee's guard (issue 27): read it, tighten it, or go back to the default (when that is no looser).
    Route("guard_show", "api/guard", "guard_show", ("GET",)),
    Route("guard_set", "api/guard", "guard_set", ("PUT",)),
    Route("guard_clear", "api/guard", "guard_clear", ("DELETE",)),
    # The licensee's own settings, its quiet hours and time zone (issue 29): what `python -m sms licensees set` changes.
    Route("settings_show", "api/settings", "settings_show", ("GET",)),
    Route("settings_set", "api/settings", "settings_set", ("PUT",)),
    # API keys (issue 29): the key a request carries (any key: the console's sign-in), and, with an admin key,
    # every licensee's keys: list, create, rotate, revoke. The secret is in the answer to create and rotate only.
    Route("keys_current", "api/keys/current", "keys_current", ("GET",)),
    Route("keys_list", "api/keys", "keys_list", ("GET",)),
    Route("keys_create", "api/keys", "keys_create", ("POST",)),
    Route("keys_rotate", "api/keys/{keyId}/rotate", "keys_rotate", ("POST",), patterns=_KEY_ID),
    Route("keys_revoke", "api/keys/{keyId}", "keys_revoke", ("DELETE",), patterns=_KEY_ID),
    # opt-outs (issue 29): the licensee's list, a number's history (the number in the query: + and spaces), manual changes.
    Route("optouts_list", "api/optouts", "optouts_list", ("GET",)),
    Route("optouts_history", "api/optouts/history", "optouts_history", ("GET",)),
    Route("optouts_add", "api/optouts", "optouts_add", ("POST",)),
    Route("optouts_remove", "api/optouts", "optouts_remove", ("DELETE",)),
    # Vendors' callbacks: delivery receipts and inbound SMS (replies, STOP/START).
    Route("receipts_acs", "api/sms/receipts/acs", "receipts_acs", ("POST", "OPTIONS")),
    Route("receipts_twilio", "api/sms/receipts/twilio", "receipts_twilio", ("POST",)),
    Route("inbound_twilio", "api/sms/inbound/twilio", "inbound_twilio", ("POST",)),
    # The deployment's providers and their health in this worker (issue 26).
    Route("providers", "api/providers", "providers", ("GET",)),
    Route("providers_with_format", "api/providers.{format}", "providers", ("GET",)),
    Route("health", "api/health", "health", ("GET",)),
    Route("openapi", "api/openapi.json", "openapi", ("GET",)),
    Route("metadata", "api/metadata", "metadata", ("GET",)),
    # ServiceStack's Add ServiceStack Reference (issue 28): its tools fetch /types/{language} from the root, and its
    # metadata pages live at /metadata and /{format}/metadata?op={Operation} (sms/entrypoints/native_types).
    Route("types", "types", "types", ("GET",)),
    Route("types_metadata", "types/metadata", "types", ("GET",)),
    Route("types_typescript", "types/typescript", "types", ("GET",)),
    Route("types_python", "types/python", "types", ("GET",)),
    Route("types_csharp", "types/csharp", "types", ("GET",)),
    Route("metadata_operations", "metadata", "metadata_page", ("GET",)),
    Route("json_metadata", "json/metadata", "metadata_page", ("GET",), Format.JSON),
    Route("jsv_metadata", "jsv/metadata", "metadata_page", ("GET",), Format.JSV),
    # The operator console (issue 29): its page and the files it loads, no key needed (the page signs in to the API).
    Route("console", "console", "console", ("GET",)),
    Route("console_asset", "console/{asset}", "console", ("GET",), patterns=(("asset", CONSOLE_ASSET_PATTERN),)),
    # Issue 29: every licensee (admin keys only), and the webhook events one message produced.
    Route("licensees_list", "api/licensees", "licensees_list", ("GET",)),
    Route("sms_events", "api/sms/{commId}/events", "events", ("GET",), patterns=(("commId", GUID_PATTERN),)),
]

# What a key may call, by route kind (sms.entrypoints.api checks it where it checks the key). A read-only key may call
# only READ_KINDS: the kinds that change nothing (a GET, or the estimate: a send's body, nothing stored). Every other
# kind that takes a key changes something, so a kind added later is refused to read-only keys until it is listed here.
READ_KINDS = frozenset({
    "status", "replies", "list", "usage", "providers", "estimate", "webhooks_list", "webhooks_deliveries", "routes_show",
    "guard_show", "settings_show",
    "keys_current", "keys_list",
    "optouts_list", "optouts_history",  # opt-outs
    "licensees_list", "events",  # issue 29: the admin's licensee list, a message's webhook events
})
# Only an admin key may call these: a licensee key's licensee is the only one it reaches.
ADMIN_KINDS = frozenset({"keys_list", "keys_create", "keys_rotate", "keys_revoke", "licensees_list"})
# The kinds whose work is one licensee's data: the key's own, or the one `licenseeId` names (query string, or a POST or
# PUT body's field). An admin key may name any licensee; a licensee key only its own (sms.entrypoints.api, _acting_for).
# Sends (and the estimate, a send's body) go by SMSModel.LicenseeId as they always have; the key routes name their own.
ACTING_KINDS = frozenset({
    "status", "replies", "cancel", "list", "usage", "webhooks_list", "webhooks_add", "webhooks_remove", "webhooks_rotate_secret",
    "webhooks_enable", "webhooks_deliveries", "webhooks_replay", "routes_show", "routes_set", "routes_clear", "guard_show",
    "guard_set", "guard_clear", "settings_show", "settings_set",
    "events",  # a message's webhook events
    "optouts_list", "optouts_history", "optouts_add", "optouts_remove",
})

# The operation ServiceStack clients name in /json/reply/{operation}; "[]" asks for an auto-batch.
OPERATION = "SMSSend"
MAX_BATCH = 100


def register(bp: func.Blueprint, handlers: dict[str, Callable[..., Callable]], *context: Any,
             routes: Sequence[Route] = ROUTES) -> func.Blueprint:
    """Register every route of `routes` whose kind `handlers` knows as a function of `bp`: its handler, made by
    `handlers[kind](route, *context)`. Returns `bp`."""
    for route in routes:
        if route.kind in handlers:
            bp.function_name(route.name)(
                bp.route(route=route.template, methods=list(route.methods), auth_level=func.AuthLevel.ANONYMOUS)(
                    handlers[route.kind](route, *context)
                )
            )
    return bp
