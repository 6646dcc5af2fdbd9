"""/types and the metadata pages through the dev host, as ServiceStack's tools ask for them (issue 28).

The `x` dotnet tool encodes option values with ServiceStack's UrlEncode (`*` as %2a, a space as +) and sends the
user's GitHub token as `Authorization: token ...` with every request when GITHUB_TOKEN is set (dotnet-app
src/Web/Startup.cs ApplyRequestFilters); typescript-ref sends encodeURIComponent's `%2C`. None of this may be refused,
and the token must never reach a log."""
import urllib.error
import urllib.request

GITHUB_TOKEN = "ghp_" + "Z" * 36


def fetch(devhost, path: str, headers: dict | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(devhost.base_url + path, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def test_the_x_tools_request_with_its_encoding_and_a_github_token_gets_the_file(devhost):
    status, media, text = fetch(devhost, "/types/csharp?IncludeTypes=SMSSend.%2a,+GetUsage.%2A&GlobalNamespace=My.Dtos",
                                {"User-Agent": "x dotnet tool", "Authorization": f"token {GITHUB_TOKEN}"})
    assert status == 200 and media == "text/plain; charset=utf-8"
    assert "\nIncludeTypes: SMSSend.*, GetUsage.*\n" in text and "\nGlobalNamespace: My.Dtos\n" in text
    assert "namespace My.Dtos\n" in text
    assert f"BaseUrl: {devhost.base_url}\n" in text and "class SMSSend" in text and "class UsageDay" in text
    assert "class QuerySms" not in text
    assert not any(GITHUB_TOKEN in line for line in devhost.output)


def test_an_option_that_would_break_the_file_is_a_400_naming_it(devhost):
    request = urllib.request.Request(devhost.base_url + "/types/python?DataClass=frozen%3DTrue)%0Aimport+os")
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 400 and b'"fieldName":"DataClass"' in error.read()


def test_typescript_refs_encoding_and_the_root_pages(devhost):
    _, _, text = fetch(devhost, "/types/typescript?IncludeTypes=SMSSend.*%2CCommResponse")
    assert "\nIncludeTypes: SMSSend.*,CommResponse\n" in text and "SMSSend" in text
    status, media, page = fetch(devhost, "/Metadata")
    assert status == 200 and media.startswith("text/html") and 'href="/json/metadata?op=QuerySms"' in page
    status, _, page = fetch(devhost, "/json/metadata?op=GetUsage")
    assert status == 200 and "<th>GET</th><th>/api/usage</th>" in page
