"""The service's operations as ServiceStack knows them: each one's request DTO, response DTO, verb and routes.

An operation is a route kind of sms.entrypoints.routes with a typed request: its routes come from the route table,
its description from OpenAPI's summary of the kind, its fields from the DTOs. /types/{language} and /metadata
(sms/entrypoints/native_types) are rendered from this list, and every operation is also served where ServiceStack
serves it, `/api/{Name}` (sms/entrypoints/named.py), which is where ServiceStack's TypeScript and Python clients call it.

Names follow ServiceStack's habit of a verb and the thing (GetSmsStatus, QuerySms for a search, CancelSms):
README, "Typed clients", lists them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from ..wire import dto, requests
from ..wire.dto import WireModel
from .openapi import SUMMARIES
from .routes import OPERATION, ROUTES, Route

# The seed's own description of SMSSend (its [Api] attribute, as its metadata page shows it).
SEED_DESCRIPTION = "Saves the specified SMS and sends it for background processing"


@dataclass(frozen=True)
class Operation:
    name: str  # the request DTO's name: what /api/{name} and /json/reply/{name} call
    request: type[WireModel]
    response: type[WireModel]
    kinds: tuple[str, ...]  # the route kinds (sms.entrypoints.routes.Route.kind) that do its work
    tag: str  # ServiceStack's [Tag]: how the metadata page groups operations
    # ServiceStack's verb marker (IGet, IPost, IPut, IDelete): how its Python client picks the method. SMSSend has
    # none, as the seed's had none (the Python DTOs it published say `class SMSSend:`); its clients post by default.
    marker: str | None

    @property
    def routes(self) -> list[Route]:
        """Its documented routes, in the route table's order: not the `.{format}` twins, not /api/{name} itself."""
        return [r for r in ROUTES if r.kind in self.kinds and not r.has_format_suffix and r.path.lower() != f"api/{self.name.lower()}"]

    @property
    def method(self) -> str:
        return self.routes[0].working_methods[0]

    @property
    def description(self) -> str:
        return SEED_DESCRIPTION if self.name == OPERATION else SUMMARIES[self.kinds[0]]


def _op(request: type[WireModel], response: type[WireModel], kind: str, tag: str, marker: str | None) -> Operation:
    return Operation(request.__name__, request, response, (kind,), tag, marker)


OPERATIONS: tuple[Operation, ...] = (
    Operation(OPERATION, dto.SMSSend, dto.CommResponse, ("send", "send_now"), "sms", None),
    _op(requests.EstimateSms, dto.EstimateResponse, "estimate", "sms", "IPost"),
    _op(requests.GetSmsStatus, dto.MessageState, "status", "sms", "IGet"),
    _op(requests.GetSmsReplies, dto.RepliesResponse, "replies", "sms", "IGet"),
    _op(requests.CancelSms, dto.CancelResponse, "cancel", "sms", "IDelete"),
    _op(requests.QuerySms, dto.MessageList, "list", "sms", "IGet"),
    _op(requests.GetUsage, dto.UsageResponse, "usage", "usage", "IGet"),
    _op(requests.GetProviders, dto.ProvidersResponse, "providers", "providers", "IGet"),
    _op(requests.GetWebhookEndpoints, dto.WebhookEndpointList, "webhooks_list", "webhooks", "IGet"),
    _op(requests.AddWebhookEndpoint, dto.WebhookEndpointState, "webhooks_add", "webhooks", "IPost"),
    _op(requests.DeleteWebhookEndpoint, dto.WebhookEndpointRemoved, "webhooks_remove", "webhooks", "IDelete"),
    _op(requests.RotateWebhookSecret, dto.WebhookEndpointState, "webhooks_rotate_secret", "webhooks", "IPost"),
    _op(requests.EnableWebhookEndpoint, dto.WebhookEndpointState, "webhooks_enable", "webhooks", "IPost"),
    _op(requests.GetWebhookDeliveries, dto.WebhookDeliveryList, "webhooks_deliveries", "webhooks", "IGet"),
    _op(requests.ReplayWebhookEvents, dto.WebhookReplayResponse, "webhooks_replay", "webhooks", "IPost"),
    _op(requests.GetRoutingTable, dto.RoutingTableState, "routes_show", "routes", "IGet"),
    _op(requests.SetRoutingTable, dto.RoutingTableState, "routes_set", "routes", "IPut"),
    _op(requests.ResetRoutingTable, dto.RoutingTableState, "routes_clear", "routes", "IDelete"),
    _op(requests.GetGuard, dto.GuardState, "guard_show", "guard", "IGet"),
    _op(requests.SetGuard, dto.GuardState, "guard_set", "guard", "IPut"),
    _op(requests.ResetGuard, dto.GuardState, "guard_clear", "guard", "IDelete"),
    _op(requests.GetLicenseeSettings, dto.LicenseeSettingsState, "settings_show", "settings", "IGet"),
    _op(requests.SetLicenseeSettings, dto.LicenseeSettingsState, "settings_set", "settings", "IPut"),
    # API keys (issue 29)
    _op(requests.GetCurrentApiKey, dto.ApiKeyState, "keys_current", "keys", "IGet"),
    _op(requests.QueryApiKeys, dto.ApiKeyList, "keys_list", "keys", "IGet"),
    _op(requests.CreateApiKey, dto.ApiKeyState, "keys_create", "keys", "IPost"),
    _op(requests.RotateApiKey, dto.ApiKeyRotation, "keys_rotate", "keys", "IPost"),
    _op(requests.RevokeApiKey, dto.ApiKeyState, "keys_revoke", "keys", "IDelete"),
    # opt-outs
    _op(requests.QueryOptOuts, dto.OptOutList, "optouts_list", "optouts", "IGet"),
    _op(requests.GetOptOutHistory, dto.OptOutHistory, "optouts_history", "optouts", "IGet"),
    _op(requests.AddOptOut, dto.OptOutState, "optouts_add", "optouts", "IPost"),
    _op(requests.RemoveOptOut, dto.OptOutState, "optouts_remove", "optouts", "IDelete"),
    # Issue 29: every licensee (admin keys only), and the webhook events one message produced.
    _op(requests.QueryLicensees, dto.LicenseeList, "licensees_list", "licensees", "IGet"),
    _op(requests.GetSmsEvents, dto.WebhookEventList, "events", "sms", "IGet"),
)


@functools.cache
def by_name() -> dict[str, Operation]:
    """Each operation under its name in lower case: ServiceStack matches /api/{name} in any case."""
    return {op.name.lower(): op for op in OPERATIONS}
