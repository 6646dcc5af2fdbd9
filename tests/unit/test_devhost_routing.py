"""The dev host routes as the Azure Functions host does (sources in sms/dev/host/routing.py and
docs/devhost.md): function-name order, first match; a method mismatch is a 404; ASP.NET's template
rules. Each case here is one where ASP.NET Core's own precedence, or a lenient stand-in, answers
differently from Azure."""
import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sms.dev.host.http import http_app, query_params
from sms.dev.host.routing import HttpRoute, Template, kestrel_path, route_table, select


def route(name: str, template: str, methods=("GET",), function=None) -> HttpRoute:
    return HttpRoute(name, template, Template.parse(template), frozenset(methods) if methods else None, function or (lambda req: None))


def chosen(table, method, path):
    found = select(route_table(table), method, kestrel_path(path))
    return found and found[0].name


def test_the_first_function_by_name_wins_not_the_most_specific_route():
    # ASP.NET Core alone would prefer the literal 'items/new'; the host tries functions by name.
    assert chosen([route("b_new", "items/new"), route("a_any", "items/{id}")], "GET", "/items/new") == "a_any"
    assert chosen([route("a_new", "items/new"), route("b_any", "items/{id}")], "GET", "/items/new") == "a_new"


def test_names_sort_ordinal_ignore_case_with_underscore_after_letters():
    # OrdinalIgnoreCase compares upper-cased characters: 'AB' < 'A_B' because 'B' (0x42) < '_' (0x5F);
    # lower-casing would put '_' (0x5F) before 'b' (0x62) and pick the other function.
    assert chosen([route("a_b", "x/{id}"), route("Ab", "x/lit")], "GET", "/x/lit") == "Ab"


def test_a_route_whose_method_does_not_match_is_skipped_and_nothing_left_is_a_404():
    table = [route("a_post", "thing/{id}", ("POST",)), route("b_get", "thing/{id}", ("GET",))]
    assert chosen(table, "GET", "/thing/1") == "b_get"
    assert chosen(table, "DELETE", "/thing/1") is None  # the host's 404, not 405
    assert chosen([route("any", "thing", None)], "PATCH", "/thing") == "any"  # no methods: every method
    assert chosen([route("get", "thing")], "HEAD", "/thing") is None  # HEAD is not GET to the host


def test_literals_ignore_case_one_trailing_slash_is_ignored_an_empty_segment_never_matches():
    table = [route("send", "api/send")]
    assert chosen(table, "GET", "/API/Send") == "send"
    assert chosen(table, "GET", "/api/send/") == "send"
    assert chosen(table, "GET", "/api/send//") is None
    assert chosen(table, "GET", "/api//send") is None
    assert chosen(table, "GET", "/api/send/more") is None


def test_complex_segments_match_from_the_right_as_aspnet_does():
    template = Template.parse("api/send.{format}")
    assert template.match("/api/SEND.json") == {"format": "json"}
    assert template.match("/api/send.a.json") == {"format": "a.json"}
    assert template.match("/api/send.") is None  # a parameter takes at least one character
    assert template.match("/api/xsend.json") is None  # a leading literal must start the segment
    assert template.match("/api/sendmessage.json") is None
    assert Template.parse("{name}.{ext}").match("/a.b.c") == {"name": "a.b", "ext": "c"}
    assert Template.parse("{name}-v{version}").match("/report-v2") == {"name": "report", "version": "2"}


def test_regex_constraints_ignore_case_search_and_read_doubled_braces():
    three_digits = Template.parse("code/{code:regex(^\\d{{3}}$)}")
    assert three_digits.match("/code/123") == {"code": "123"}
    assert three_digits.match("/code/1234") is None
    assert Template.parse("x/{v:regex(ab)}").match("/x/zzABzz") == {"v": "zzABzz"}  # IsMatch: unanchored, IgnoreCase
    nested = Template.parse("x/{v:regex(^a(\\.[a-z]+)?$)}")  # a ')' inside the pattern does not end it
    assert nested.match("/x/a.json") == {"v": "a.json"} and nested.match("/x/a.") is None
    guid = Template.parse("m/{id:guid}")
    assert guid.match("/m/E1F6BE64-7333-48E3-B370-55B6C0FD9EBE") and guid.match("/m/e1f6be64733348e3b37055b6c0fd9ebe")
    assert guid.match("/m/send") is None


def test_template_syntax_the_host_refuses_is_refused_here_too():
    for bad in ("x/{id", "x/{a{b}", "x/a?b", "x/{a}{b}", "x/{id:nosuchconstraint}"):
        with pytest.raises(ValueError):
            Template.parse(bad)


def test_optional_and_catch_all_parameters():
    assert Template.parse("files/{*path}").match("/files/a/b/c") == {"path": "a/b/c"}
    assert Template.parse("files/{*path}").match("/files") == {}
    assert Template.parse("items/{id?}").match("/items") == {}
    assert Template.parse("items/{id?}").match("/items/7") == {"id": "7"}


def test_the_path_is_matched_as_kestrel_decodes_it():
    assert kestrel_path("/api/s%6Ds/x%20y") == "/api/sms/x y"
    assert kestrel_path("/api/a%2Fb") == "/api/a%2Fb"  # an encoded slash stays encoded: one segment
    assert kestrel_path("/api/x/../send?q=1") == "/api/send"
    assert chosen([route("one", "api/{value}")], "GET", "/api/a%2Fb") == "one"


def test_routes_the_host_refuses_to_load_are_left_out():
    problems: list[str] = []
    table = route_table([route("admin_page", "admin/stats"), route("runtime_x", "Runtime"), route("a_first", "Same/Route"),
                         route("b_second", "same/route/"), route("c_post", "same/route", ("POST",))], problems.append)
    assert [r.name for r in table] == ["a_first", "c_post"]
    assert len(problems) == 3
    assert [m for m in problems if m.startswith("b_second")] == [
        "b_second is not loaded: its route conflicts with the route defined by function 'a_first'"]


def test_query_values_reach_the_function_as_the_host_joins_them():
    assert query_params("a=1&a=2&b=&flag&c=x%20y+z") == {"a": "1,2", "c": "x y z"}
    assert query_params("format=jsv&FORMAT=json") == {"format": "jsv,json"}
    assert query_params("a=&a=2") == {"a": "2"}


async def test_the_http_front_answers_as_the_host_does():
    seen: list[func.HttpRequest] = []

    async def echo(req: func.HttpRequest) -> func.HttpResponse:
        seen.append(req)
        return func.HttpResponse(b"ok", status_code=200)

    table = route_table([route("thing", "api/thing/{id}", ("POST",), echo)])
    async with TestClient(TestServer(http_app(table, max_request_body=1024), host="127.0.0.1")) as client:
        missing = await client.get("/api/nothing")
        assert missing.status == 404 and await missing.read() == b"" and "Content-Type" not in missing.headers
        wrong_method = await client.get("/api/thing/1")
        assert wrong_method.status == 404 and await wrong_method.read() == b""  # not 405
        home = await client.get("/")
        assert home.status == 200 and home.content_type == "text/html"
        too_big = await client.post("/api/thing/1", data=b"x" * 2048)
        assert too_big.status == 500 and await too_big.read() == b"" and not seen  # the host's answer above its limit
        ok = await client.post("/api/thing/7?a=1&a=2", data=b"body", headers=[("X-Twice", "a"), ("X-Twice", "b")])
        assert ok.status == 200 and await ok.read() == b"ok"
    req = seen[0]
    assert req.route_params == {"id": "7"} and req.params == {"a": "1,2"} and req.get_body() == b"body"
    assert req.headers["x-twice"] == "a,b"


async def test_a_route_chosen_once_is_chosen_alike_for_each_method_and_path_and_past_the_memo_limit(monkeypatch):
    """dispatch remembers the route chosen for a (method, raw path): the answer must stay select's, per
    method, with each request's route values, also after the memo is cleared when full. (The worker
    hands a function its route values read-only, as func.HttpRequest does here, so one dict serves all.)"""
    from aiohttp.test_utils import TestClient, TestServer

    from sms.dev.host import http as devhost_http

    monkeypatch.setattr(devhost_http, "_CHOSEN_MAX", 3)
    seen: list[tuple[str, dict]] = []

    def answering(name):
        def function(req: func.HttpRequest) -> func.HttpResponse:
            seen.append((name, dict(req.route_params)))
            return func.HttpResponse(name.encode(), status_code=200)
        return function

    table = route_table([route("a_post", "api/x/{id}", ("POST",), answering("a_post")),
                         route("b_get", "api/x/{id}", ("GET",), answering("b_get"))])
    expected = []
    async with TestClient(TestServer(http_app(table), host="127.0.0.1")) as client:
        for _ in range(2):
            for i in range(5):
                for method, name in (("POST", "a_post"), ("GET", "b_get")):
                    answer = await client.request(method, f"/api/x/{i}")
                    assert await answer.read() == name.encode()
                    expected.append((name, {"id": str(i)}))
        assert (await client.request("PUT", "/api/x/1")).status == 404
    assert seen == expected


async def test_a_body_reaches_the_function_only_with_a_content_length_as_on_the_host():
    """The host fills RpcHttp.Body only when `request.Body != null && request.ContentLength > 0`
    (azure-functions-host 4.1037.0, src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs,
    ToRpcHttp); the worker then hands the function b'' (azure-functions-python-worker 4.34.0,
    azure_functions_worker/bindings/datumdef.py, Datum.from_typed_data: `Datum(type='bytes', value=b'')`).
    A chunked body has no Content-Length: under the real host the function sees it empty."""
    seen: list[func.HttpRequest] = []

    async def echo(req: func.HttpRequest) -> func.HttpResponse:
        seen.append(req)
        return func.HttpResponse(b"ok", status_code=200)

    async def chunks():
        yield b'{"a":'
        yield b"1}"

    table = route_table([route("thing", "api/thing", ("POST",), echo)])
    async with TestClient(TestServer(http_app(table), host="127.0.0.1")) as client:
        chunked = await client.post("/api/thing", data=chunks())
        assert chunked.status == 200
        sized = await client.post("/api/thing", data=b'{"a":1}')
        assert sized.status == 200
        # The connection still serves the next request: the unread chunked body was not left in the way.
        again = await client.post("/api/thing", data=chunks())
        assert again.status == 200
    assert [req.get_body() for req in seen] == [b"", b'{"a":1}', b""]
    assert seen[0].headers["transfer-encoding"] == "chunked" and "content-length" not in seen[0].headers


async def answered(response: func.HttpResponse):
    async def function(req: func.HttpRequest) -> func.HttpResponse:
        return response

    table = route_table([route("thing", "api/thing", ("GET",), function)])
    async with TestClient(TestServer(http_app(table), host="127.0.0.1")) as client:
        answer = await client.get("/api/thing")
        return answer.status, answer.headers, await answer.read()


async def test_a_content_type_from_mimetype_gets_a_charset_only_for_text_as_the_worker_writes_it():
    """azure-functions-python-library azure/functions/http.py, HttpResponseConverter.encode (1.22 and 1.26):
    `f'{obj.mimetype}; charset={obj.charset}'` if the mimetype starts with 'text/', else the mimetype alone."""
    status, headers, _ = await answered(func.HttpResponse("{}", mimetype="application/json"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert (await answered(func.HttpResponse("hi")))[1]["Content-Type"] == "text/plain; charset=utf-8"
    html = func.HttpResponse("hi", mimetype="text/html", charset="latin-1")
    assert (await answered(html))[1]["Content-Type"] == "text/html; charset=latin-1"
    given = func.HttpResponse("{}", mimetype="text/plain", headers={"Content-Type": "application/json; charset=utf-8"})
    assert (await answered(given))[1]["Content-Type"] == "application/json; charset=utf-8"  # a header given wins


def with_headers(*pairs: tuple[str, str]) -> func.HttpResponse:
    response = func.HttpResponse("ok")
    for name, value in pairs:
        response.headers.add(name, value)
    return response


async def test_every_set_cookie_goes_out_as_the_worker_and_host_write_it():
    """The worker reads each Set-Cookie with SimpleCookie and sends it as an RpcHttpCookie
    (azure-functions-python-worker 4.34.0, bindings/datumdef.py, parse_to_rpc_http_cookie_list); the host appends
    each with ASP.NET Core's ResponseCookies.Append (host GrpcMessageExtensionUtilities.RpcHttpCookieConverter,
    RawScriptResult). The expected values are the worker's own end-to-end tests against the host
    (tests/unittests/test_http_functions.py, test_multiple_cookie_header_in_response and
    test_set_cookie_header_in_response_default_value); the dev host sent only the last cookie, as it came."""
    status, headers, _ = await answered(with_headers(
        ("Set-Cookie", "foo3=42; Domain=example.com; Expires=Thu, 12-Jan-2017 13:55:08 GMT; Path=/; Max-Age=10000000; Secure; HttpOnly"),
        ("Set-Cookie", "foo3=43; Domain=example.com; Expires=Thu, 12-Jan-2018 13:55:08 GMT; Path=/; Max-Age=10000000; Secure; HttpOnly"),
        ("HELLO", "world")))
    assert status == 200 and headers["HELLO"] == "world"
    assert headers.getall("Set-Cookie") == [
        "foo3=42; expires=Thu, 12 Jan 2017 13:55:08 GMT; max-age=10000000; domain=example.com; path=/; secure; httponly",
        "foo3=43; expires=Fri, 12 Jan 2018 13:55:08 GMT; max-age=10000000; domain=example.com; path=/; secure; httponly"]
    assert (await answered(with_headers(("Set-Cookie", "foo=bar"))))[1].getall("Set-Cookie") == ["foo=bar; domain=; path="]
    # samesite as the worker maps it (parse_cookie_attr_same_site); the value through Uri.EscapeDataString.
    assert (await answered(with_headers(("Set-Cookie", 'n="a b"; SameSite=Lax'))))[1].getall("Set-Cookie") == [
        "n=a%20b; domain=; path=; samesite=lax"]


async def test_a_cookie_the_worker_cannot_read_is_dropped_and_one_it_fails_on_is_a_500():
    """The worker's tests again: an empty Set-Cookie, or one SimpleCookie refuses ('SecureFalse'), sends no cookie
    and a 200 (test_set_cookie_header_in_response_empty_value, test_response_cookie_header_nullable_bool_err);
    an expires it cannot parse fails the invocation, a 500 (test_response_cookie_header_nullable_timestamp_err)."""
    for cookie in ("", "foo3=42; Domain=example.com; Path=/; Max-Age=10000000; SecureFalse; HttpOnly"):
        status, headers, body = await answered(with_headers(("Set-Cookie", cookie)))
        assert status == 200 and "Set-Cookie" not in headers and body == b"ok", cookie
    status, headers, body = await answered(with_headers(("Set-Cookie", "foo=bar; Domain=123; Expires=Dummy")))
    assert status == 500 and body == b""


async def test_a_header_given_twice_goes_once_with_its_last_value_as_the_worker_sends_a_map():
    """datum_as_proto sends `{k: v.value for k, v in headers.items()}`: a map, so one value per name."""
    _, headers, _ = await answered(with_headers(("X-Twice", "a"), ("X-Twice", "b")))
    assert headers.getall("X-Twice") == ["b"]
