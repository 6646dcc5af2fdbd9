"""ServiceStack's predefined route for every operation: /api/{Operation}, where its clients send a typed request.

ServiceStack serves each request DTO at `/api/{Name}` whatever [Route]s it has, and its TypeScript and Python
JsonServiceClient send every typed request there: `baseUrl + "/api/" + request.getTypeName()` with the verb of
`getMethod()` (servicestack-client src/index.ts createUrlFromDto), or the class name with the verb of its IGet/
IPost/... marker (servicestack-python servicestack/clients.py). A GET or DELETE carries the DTO's fields in the
query string, a POST or PUT in the body. So each operation of sms/entrypoints/operations.py gets a route here
that hands its request to the operation's own route's work: the fields that route takes in its path (commId,
endpointId) are found in the query string or the body, checked as the host's route constraint would check them,
and become its route values; the rest stay where they came.
"""
from __future__ import annotations

import re

import azure.functions as func

from .. import wire
from ..domain.errors import FieldError, PayloadTooLarge, ValidationFailed
from .native_types.names import snake_case
from .operations import OPERATIONS, Operation
from .routes import GUID_PATTERN, OPERATION, SEND_METHODS, Route

# Every method, so that a wrong one is answered 405 naming the right one (the host would answer a bare 404).
_OPERATION_OF: dict[str, Operation] = {
    "op_" + snake_case(op.name): op
    for op in OPERATIONS if op.name != OPERATION  # SMSSend has had /api/SMSSend (and its auto-batch) since the seed
}
NAMED_ROUTES: tuple[Route, ...] = tuple(
    Route(name, f"api/{op.name}", op.kinds[0], SEND_METHODS, verb=op.method) for name, op in _OPERATION_OF.items()
)
_PATH_VALUE = re.compile(r"\{(\w+)")


def operation_of(route: Route) -> Operation | None:
    """The operation a /api/{Operation} route calls; None for every other route."""
    return _OPERATION_OF.get(route.name)


def as_own_route(req: func.HttpRequest, op: Operation, max_bytes: int) -> func.HttpRequest:
    """The request as the operation's own route would have received it: its path values taken from the query
    string (or else the body), each one required and checked; ValidationFailed naming one that is missing or wrong."""
    own = op.routes[0]
    patterns = dict(own.patterns)
    query = {key.lower(): value for key, value in req.params.items()}
    body: dict | None = None
    values: dict[str, str] = {}
    errors: list[FieldError] = []
    for name in _PATH_VALUE.findall(own.path):
        value = query.get(name.lower())
        if value is None and req.get_body():
            body = _body_fields(req, max_bytes) if body is None else body
            value = body.get(name.lower())
        # A commId is read as the status route reads one (any Guid form); the host's pattern allows a format suffix.
        pattern = GUID_PATTERN if name == "commId" else patterns.get(name)
        if value is None or value == "":
            errors.append(FieldError(name, "NotEmpty", f"{name} is required: {op.name} names the {name} in its request"))
        elif not isinstance(value, str) or (pattern and re.fullmatch(pattern, value) is None):
            errors.append(FieldError(name, "InvalidValue", f"{name} '{value}' is not a valid {name}"[:300]))
        else:
            values[name] = value
    if errors:
        raise ValidationFailed(errors)
    params = {key: value for key, value in req.params.items() if key.lower() not in {n.lower() for n in values}}
    return func.HttpRequest(req.method, req.url, headers=dict(req.headers), params=params, route_params=values, body=req.get_body())


def _body_fields(req: func.HttpRequest, max_bytes: int) -> dict:
    """The body's top-level fields by their names in lower case ({} when the body is not an object)."""
    body = req.get_body()
    if len(body) > max_bytes:
        raise PayloadTooLarge(len(body), max_bytes)
    data = wire.read_body(body, req.headers.get("Content-Type"))
    return {key.lower(): value for key, value in data.items() if isinstance(key, str)} if isinstance(data, dict) else {}
