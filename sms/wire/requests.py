"""The request DTOs of the operations after the seed's SMSSend: one class an operation, named as ServiceStack
names them (a verb and the thing: GetSmsStatus, QuerySms), holding what its route takes in the path, the query
string or the body.

They are what typed clients send (ServiceStack's `/api/{Operation}` routes, sms/entrypoints/named.py) and what
/types/{language} declares (sms/entrypoints/native_types). The query parameters the list, usage and delivery-log
routes read are these models' fields (sms/wire/mapping.py), and OpenAPI documents them from here.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .dto import (
    Days,
    DotNetType,
    Flag,
    GuardRequest,
    Guid,
    Hours,
    RoutingTableRequest,
    SMSModel,
    WebhookEndpointRequest,
    WebhookReplayRequest,
    WireModel,
)

# What a query string may name: text the route's own mapping checks (and names, when wrong), typed for the DTOs.
QueryGuid = Annotated[str | None, DotNetType("Guid", nullable=True)]
_COMM_ID = "The commId a send answered with (32 hex digits, dashes allowed)"
_ENDPOINT_ID = "The endpointId the endpoint was added with (32 hex digits)"
_TOKEN = "From the previous page's answer: the next page"
_INSTANT = "an instant with its offset (Z, +HH:MM or -HH:MM), or a day (UTC)"
# Every operation on one licensee's data takes it (sms.entrypoints.routes.ACTING_KINDS): the query string's, or a body's field.
ACTING_FOR = "licenseeId"
ACTING_FOR_TEXT = "Admin keys only: the licensee to act for; the key's own when left out"


class GetSmsStatus(WireModel):
    comm_id: Annotated[str | None, DotNetType("Guid")] = Field(default=None, description=_COMM_ID)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class GetSmsReplies(WireModel):
    comm_id: Annotated[str | None, DotNetType("Guid")] = Field(default=None, description=_COMM_ID)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class CancelSms(WireModel):
    comm_id: Annotated[str | None, DotNetType("Guid")] = Field(default=None, description=_COMM_ID)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class EstimateSms(WireModel):
    """Takes what a send takes (SMSSend's fields); not an SMSSend itself, as it answers an EstimateResponse."""

    sms_model: SMSModel | None = Field(default=None, validation_alias="SMSModel", serialization_alias="smsModel")
    create_communication_references_immediately: bool = Field(default=False, description=(
        "SMSSend's, read and ignored: an estimate creates nothing"))


class QuerySms(WireModel):
    take: int | None = Field(default=None, description="Messages per page")
    continuation_token: str | None = Field(default=None, description=_TOKEN)
    from_: str | None = Field(default=None, validation_alias="From", serialization_alias="from",
                              description=f"Created from (inclusive): {_INSTANT}")
    to: str | None = Field(default=None, description=f"Created before (exclusive): {_INSTANT}, taken whole")
    status: str | None = Field(default=None, description="The message's status, or any recipient's")
    phone_number: str | None = Field(default=None, description="A recipient's number, in any form a send accepts")
    contact_id: QueryGuid = Field(default=None, description="A recipient's contactId")
    linked_object_id: QueryGuid = Field(default=None, description="The message's linkedObjectId")
    suite_id: QueryGuid = Field(default=None, description="The message's suiteId")
    reference: str | None = Field(default=None, description="The reference a send answered with")
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class GetUsage(WireModel):
    from_: str | None = Field(default=None, validation_alias="From", serialization_alias="from", description=(
        "The first day, included: the licensee's (a calendar day of its time zone); 29 days before to by default"))
    to: str | None = Field(default=None, description="The last day, included: the licensee's; its today by default")
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class GetProviders(WireModel):
    pass


class GetWebhookEndpoints(WireModel):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class AddWebhookEndpoint(WebhookEndpointRequest):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class DeleteWebhookEndpoint(WireModel):
    endpoint_id: str | None = Field(default=None, description=_ENDPOINT_ID)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class RotateWebhookSecret(WireModel):
    endpoint_id: str | None = Field(default=None, description=_ENDPOINT_ID)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class EnableWebhookEndpoint(WireModel):
    endpoint_id: str | None = Field(default=None, description=_ENDPOINT_ID)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class GetWebhookDeliveries(WireModel):
    endpoint_id: str | None = Field(default=None, description=_ENDPOINT_ID)
    take: int | None = Field(default=None, description="Attempts per page")
    continuation_token: str | None = Field(default=None, description=_TOKEN)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class ReplayWebhookEvents(WebhookReplayRequest):
    endpoint_id: str | None = Field(default=None, description=_ENDPOINT_ID)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class GetRoutingTable(WireModel):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class SetRoutingTable(RoutingTableRequest):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class ResetRoutingTable(WireModel):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class GetGuard(WireModel):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class SetGuard(GuardRequest):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


class ResetGuard(WireModel):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


# The licensee's own settings (issue 29): what `python -m sms licensees show|set` reads and changes, with its key.

class GetLicenseeSettings(WireModel):
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


# A null keeps a field rather than clearing it: ServiceStack's .NET clients leave nulls out of what they send
# (ServiceStack.Text's JsConfig.IncludeNullValues is false by default, src/ServiceStack.Text/JsConfig.cs) and JSV has
# none, so NoQuietHours is a way every client can say "none".
class SetLicenseeSettings(WireModel):
    """PUT /api/settings: a change to the licensee's quiet hours or time zone, as `licensees set` makes one. What is
    not given (left out, or null) is kept, but one at least must be given; NoQuietHours: true removes the quiet hours.
    What GET answers can be put back as it is."""

    quiet_hours: str | None = Field(default=None, description=(
        "The window messages wait out, HH:MM-HH:MM in 24-hour time (21:00-08:00 crosses midnight), in each recipient's "
        "local time; urgent messages go anyway. Give this or NoQuietHours, not both"))
    no_quiet_hours: Flag = Field(default=None, description=(
        "true: no quiet hours any more. In JSON a boolean; in JSV or a form, True or False"))
    time_zone: str | None = Field(default=None, description=(
        "The licensee's own zone, an IANA name (Australia/Sydney): for numbers whose zone is not known or spans several, "
        "and the days its usage and caps count"))
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)
# -- API keys (issue 29): the current key for any key; the rest for admin keys only --

_KEY_ID = "The key's id: the 16 hex digits after sms_ in the key"


class GetCurrentApiKey(WireModel):
    pass


class QueryApiKeys(WireModel):
    licensee_id: Annotated[str | None, DotNetType("Guid", nullable=True)] = Field(
        default=None, description="Only this licensee's keys (every licensee's when left out)")


class CreateApiKey(WireModel):
    licensee_id: Guid = Field(default=None, description="The licensee the key works for (required)")
    name: str | None = Field(default=None, description="A label to recognise the key by (at most 100 characters)")
    role: str | None = Field(default=None, description="licensee (the default): its own licensee's data; admin: every "
                                                       "licensee's data (licenseeId) and keys")
    read_only: Flag = Field(default=None, description="Reads only: every route that changes something answers 403. False when "
                                                      "left out")
    expires_in_days: Days = Field(default=None, description="The key stops working after this many days (1 to 3660); never "
                                                            "when left out")


class RotateApiKey(WireModel):
    key_id: str | None = Field(default=None, description=_KEY_ID)
    grace_hours: Hours = Field(default=None, description="How long the replaced key keeps working (0 to 8784 hours); 24 "
                                                         "when left out")


class RevokeApiKey(WireModel):
    key_id: str | None = Field(default=None, description=_KEY_ID)


# -- the admin's licensee list, and a message's webhook events (issue 29) --


class QueryLicensees(WireModel):
    pass


class GetSmsEvents(WireModel):
    comm_id: Annotated[str | None, DotNetType("Guid")] = Field(default=None, description=_COMM_ID)
    take: int | None = Field(default=None, description="Events per page")
    continuation_token: str | None = Field(default=None, description=_TOKEN)
    licensee_id: QueryGuid = Field(default=None, description=ACTING_FOR_TEXT)


def query_names(model: type[WireModel]) -> tuple[str, ...]:
    """The names a GET request DTO's fields have in a query string: their JSON names (matched in any case)."""
    return tuple(field.serialization_alias or name for name, field in model.model_fields.items())


# opt-outs (issue 29): the licensee's opt-out list, a number's history, and manual changes with a reason.

_ACT_FOR = "Admin keys only: the licensee to act for; the key's own when left out"
_OPT_OUT_NUMBER = "The number, in any form a send accepts (E.164, or national in the default region)"
_OPT_OUT_REASON = "Why (1 to 500 printable characters): kept with the change, with the id of the key that made it (required)"


class QueryOptOuts(WireModel):
    phone_number: str | None = Field(default=None, description=(
        "Only the numbers starting with this: + and 1 to 15 digits (a whole E.164 number finds itself), or a whole number "
        "in any form a send accepts. Every number when left out"))
    take: int | None = Field(default=None, description="Opt-outs per page (1 to 200; 50 when left out)")
    continuation_token: str | None = Field(default=None, description=_TOKEN)
    licensee_id: QueryGuid = Field(default=None, description=_ACT_FOR)


class GetOptOutHistory(WireModel):
    phone_number: str | None = Field(default=None, description=f"{_OPT_OUT_NUMBER} (required)")
    licensee_id: QueryGuid = Field(default=None, description=_ACT_FOR)


class AddOptOut(WireModel):
    phone_number: str | None = Field(default=None, description=f"{_OPT_OUT_NUMBER} (required)")
    reason: str | None = Field(default=None, description=_OPT_OUT_REASON)
    licensee_id: QueryGuid = Field(default=None, description=_ACT_FOR)


class RemoveOptOut(WireModel):
    phone_number: str | None = Field(default=None, description=f"{_OPT_OUT_NUMBER} (required)")
    reason: str | None = Field(default=None, description=_OPT_OUT_REASON)
    licensee_id: QueryGuid = Field(default=None, description=_ACT_FOR)
