"""Settings the gateway reads, with local defaults, validated once at start-up.

Every setting is documented in README and listed in local.settings.example.json.
A wrong value fails early with a message naming the setting, instead of surfacing
later as a confusing error in the middle of a request.
"""
from __future__ import annotations

import json
import os
import re
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Mapping

import phonenumbers

from .domain.errors import ValidationFailed
from .domain.prices import NO_PRICES, PriceTable, PriceTableError, parse_prices
from .domain.pumping import Rules
from .domain.routing import RoutingTable, parse_table

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where `make run` serves the gateway: the default of the commands that talk to a local one.
LOCAL_GATEWAY = "http://127.0.0.1:7071"

# The queue name is fixed because the queue trigger's decorator needs it at import time.
SEND_QUEUE = "sms-send"
# The one-call accept's jobs (version 2, the whole message: sms/domain/jobs.py), on a queue of their own so that a
# worker of an earlier release, which would drop one it cannot find rows for, never takes one (issue 30).
ACCEPT_QUEUE = "sms-accept"
WEBHOOK_QUEUE = "sms-webhooks"  # webhook deliveries, one batch of events to one endpoint a message
# NCRONTAB (seconds first): the sweeper runs every five minutes; retention every hour; the usage
# roll-up every hour too, a quarter past: each run counts what is due (a day once it has ended, then about
# daily for late receipts) and a bounded batch of it, so a backlog (the timer down for days) drains by the hour.
SWEEP_SCHEDULE = "0 */5 * * * *"
RETENTION_SCHEDULE = "0 30 * * * *"
USAGE_ROLL_UP_SCHEDULE = "0 15 * * * *"

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(host: str = "127.0.0.1", queue_port: int = 10001, table_port: int = 10002) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"QueueEndpoint=http://{host}:{queue_port}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{AZURITE_ACCOUNT};"
    )


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


# SMS_STORAGE_REQUESTS: who writes the two hot storage requests (a table transaction, a job put).
STORAGE_REQUESTS = {
    "lean": "the default: the gateway writes them itself and sends them over its own aiohttp session, signed "
            "and retried as the SDK would (sms/storage/handwritten/), for the least CPU",
    "direct": "the gateway writes them itself and sends them through the SDK clients' pipelines",
    "sdk": "the Azure SDK's own submit_transaction and send_message, should Azure ever treat the two differently",
}


def resolve_connection(setting: str, value: str) -> str:
    """A storage connection string from a setting; `UseDevelopmentStorage=true` means local Azurite."""
    value = value.strip()
    if not value:
        raise ConfigError(
            f"{setting} is not set: give it a storage connection string "
            "(locally, copy local.settings.example.json to local.settings.json)"
        )
    if value.replace(" ", "").lower() == "usedevelopmentstorage=true":
        return azurite_connection_string()
    return value


@dataclass(frozen=True)
class ProviderSettings:
    """One provider instance: its name (what routes name), its kind, and that kind's settings."""

    name: str
    kind: str  # console, acs or twilio
    connection_string: str | None = None  # acs
    from_number: str | None = None  # acs, twilio
    account_sid: str | None = None  # twilio
    auth_token: str | None = None  # twilio
    messaging_service_sid: str | None = None  # twilio
    api_base_url: str | None = None  # twilio: its API's host, when not https://api.twilio.com (a regional one)
    outbox: str | None = None  # console
    rate_limit_per_second: float = 0.0  # this instance's own limit, per process; 0: none


@dataclass(frozen=True)
class Settings:
    storage_connection: str | None  # None: sign in to storage with the app's identity (endpoints below)
    provider: str = "console"  # SMS_PROVIDER's kind; with SMS_PROVIDERS, the first instance's kind
    # Every provider instance, the first the default route's (SMS_PROVIDERS, or the one SMS_PROVIDER names).
    providers: tuple[ProviderSettings, ...] = (ProviderSettings("console", "console"),)
    default_region: str = "AU"
    max_recipients: int = 1000
    max_body_chars: int = 1600
    send_concurrency: int = 16
    api_key_cache_seconds: float = 60.0
    max_request_bytes: int = 1_048_576
    max_segments: int = 10
    max_schedule_days: int = 35  # SMS_MAX_SCHEDULE_DAYS: how far ahead a sendAt may be
    max_send_attempts: int = 5
    retry_base_seconds: int = 30
    rate_limit_per_second: float = 0.0
    sending_lease_seconds: int = 300
    idempotency_hours: int = 24
    retention_days: int = 90
    requests_per_minute: int = 3000
    public_base_url: str | None = None
    eventgrid_secret: str | None = None
    # TWILIO_AUTH_TOKEN, whichever providers send: Twilio's callbacks are checked against it as well as
    # against each Twilio instance's own token (a deployment may take Twilio's callbacks while sending otherwise).
    twilio_auth_token: str | None = None
    table_endpoint: str | None = None
    queue_endpoint: str | None = None
    storage_client_id: str | None = None  # a user-assigned managed identity's client id
    storage_requests: str = "lean"  # SMS_STORAGE_REQUESTS: see STORAGE_REQUESTS
    webhooks_allow_private: bool = False  # SMS_WEBHOOKS_ALLOW_PRIVATE: local development only
    webhook_secret_grace_hours: int = 24
    # An endpoint whose deliveries failed this many times in a row, over at least this many hours, is disabled.
    webhook_disable_after_failures: int = 10
    webhook_disable_after_hours: int = 24
    # A provider's circuit breaker opens after this many failed calls in a row, and lets a probe through this long after.
    breaker_failures: int = 5
    breaker_cool_off_seconds: int = 30
    # SMS_ROUTES: the default routing table's text (JSON, checked here); None: everything through the first
    # provider. Its provider names are checked once the providers are built (default_routes, given their names).
    routes_text: str | None = None
    # SMS_SIMULATOR: sends to the numbers reserved for fiction go to the simulator provider, whatever the
    # routing table says (sms/domain/simulated.py); off, they are ordinary numbers.
    simulator: bool = True
    # SMS_GUARD_HOME_COUNTRIES: the countries a licensee without its own guard may text (ISO 3166 alpha-2,
    # comma-separated; "*" every country); empty: the deployment's SMS_DEFAULT_REGION alone.
    guard_home_countries: tuple[str, ...] = ()
    # SMS_PRICES: the operator's price table (sms/domain/prices.py), read from the file it names; none: costs unknown.
    prices: PriceTable = NO_PRICES
    # SMS_PUMPING_*: when pumping protection blocks a destination prefix (sms/domain/pumping.py has the defaults and why).
    pumping: Rules = Rules()
    # SMS_COMMID_KEY: the deployment's secret that tags the commIds of one-call accepts (sms/domain/comm_ids.py), so
    # GET and DELETE recognise one before its rows exist; SMS_COMMID_KEY_PREVIOUS: the one it replaced, still
    # recognised during a rotation (keep it for comm_ids.RECOGNISED_FOR, 8 days). None: no tagged ids.
    commid_key: str | None = None
    commid_key_previous: str | None = None
    # SMS_ACCEPT_ONE_CALL: accept eligible messages with one storage call, the job carrying the whole message
    # (issue 30). Empty: on when SMS_COMMID_KEY is set; `off`: the two-call accept, with tagged ids still recognised.
    accept_one_call: bool = False

    @property
    def console_outbox(self) -> str | None:
        """The first console provider's outbox file (SMS_CONSOLE_OUTBOX), if any."""
        return next((p.outbox for p in self.providers if p.kind == "console"), None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        connection, table_endpoint, queue_endpoint = _storage(env)
        region = env.get("SMS_DEFAULT_REGION", cls.default_region).strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(f"SMS_DEFAULT_REGION={region!r} is not a known ISO 3166 region code such as AU or US")
        providers = provider_instances(env)
        storage_requests = (env.get("SMS_STORAGE_REQUESTS") or "").strip().lower() or cls.storage_requests
        if storage_requests not in STORAGE_REQUESTS:
            raise ConfigError(f"SMS_STORAGE_REQUESTS={storage_requests!r} is not one of: "
                              + "; ".join(f"{name} ({meaning})" for name, meaning in STORAGE_REQUESTS.items()))
        return cls(
            storage_connection=connection,
            provider=providers[0].kind,
            providers=providers,
            default_region=region,
            max_recipients=_int(env, "SMS_MAX_RECIPIENTS", cls.max_recipients, low=1, high=100_000),
            max_body_chars=_int(env, "SMS_MAX_BODY_CHARS", cls.max_body_chars, low=1, high=30_000),
            send_concurrency=_int(env, "SMS_SEND_CONCURRENCY", cls.send_concurrency, low=1, high=1000),
            api_key_cache_seconds=_int(env, "SMS_API_KEY_CACHE_SECONDS", int(cls.api_key_cache_seconds), low=0, high=3600),
            max_request_bytes=_int(env, "SMS_MAX_REQUEST_BYTES", cls.max_request_bytes, low=1024, high=100 * 1_048_576),
            max_segments=_int(env, "SMS_MAX_SEGMENTS", cls.max_segments, low=1, high=255),
            max_schedule_days=_int(env, "SMS_MAX_SCHEDULE_DAYS", cls.max_schedule_days, low=1, high=365),
            max_send_attempts=_int(env, "SMS_MAX_SEND_ATTEMPTS", cls.max_send_attempts, low=1, high=50),
            retry_base_seconds=_int(env, "SMS_RETRY_BASE_SECONDS", cls.retry_base_seconds, low=1, high=3600),
            rate_limit_per_second=_number(env, "SMS_RATE_LIMIT_PER_SECOND", cls.rate_limit_per_second, low=0, high=10_000),
            sending_lease_seconds=_int(env, "SMS_SENDING_LEASE_SECONDS", cls.sending_lease_seconds, low=30, high=86_400),
            idempotency_hours=_int(env, "SMS_IDEMPOTENCY_HOURS", cls.idempotency_hours, low=1, high=24 * 30),
            retention_days=_int(env, "SMS_RETENTION_DAYS", cls.retention_days, low=1, high=3650),
            requests_per_minute=_int(env, "SMS_REQUESTS_PER_MINUTE", cls.requests_per_minute, low=0, high=1_000_000),
            public_base_url=(env.get("SMS_PUBLIC_BASE_URL") or "").strip().rstrip("/") or None,
            eventgrid_secret=env.get("SMS_EVENTGRID_SECRET") or None,
            twilio_auth_token=(env.get("TWILIO_AUTH_TOKEN") or "").strip() or None,
            table_endpoint=table_endpoint,
            queue_endpoint=queue_endpoint,
            storage_client_id=(env.get("AzureWebJobsStorage__clientId") or "").strip() or None,
            storage_requests=storage_requests,
            webhooks_allow_private=_flag("SMS_WEBHOOKS_ALLOW_PRIVATE", env.get("SMS_WEBHOOKS_ALLOW_PRIVATE", "")),
            webhook_secret_grace_hours=_int(env, "SMS_WEBHOOK_SECRET_GRACE_HOURS", cls.webhook_secret_grace_hours, low=0, high=24 * 30),
            webhook_disable_after_failures=_int(env, "SMS_WEBHOOK_DISABLE_AFTER_FAILURES", cls.webhook_disable_after_failures,
                                                low=1, high=10_000),
            breaker_failures=_int(env, "SMS_BREAKER_FAILURES", cls.breaker_failures, low=1, high=1000),
            breaker_cool_off_seconds=_int(env, "SMS_BREAKER_COOL_OFF_SECONDS", cls.breaker_cool_off_seconds, low=1, high=3600),
            webhook_disable_after_hours=_int(env, "SMS_WEBHOOK_DISABLE_AFTER_HOURS", cls.webhook_disable_after_hours, low=0, high=24 * 30),
            routes_text=_routes(env),
            simulator=_flag("SMS_SIMULATOR", env.get("SMS_SIMULATOR", ""), cls.simulator),
            guard_home_countries=_home_countries(env) or (region,),
            prices=_prices(env),
            pumping=_pumping(env),
            **_one_call(env),
        )


def _storage(env: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(connection string, table endpoint, queue endpoint): a connection string when one is set,
    otherwise the endpoints of an identity-based connection, named the way the Functions host
    names them (AzureWebJobsStorage__accountName, or __tableServiceUri and __queueServiceUri)."""
    if (env.get("AzureWebJobsStorage") or "").strip():
        return resolve_connection("AzureWebJobsStorage", env["AzureWebJobsStorage"]), None, None
    account = (env.get("AzureWebJobsStorage__accountName") or "").strip()
    tables = ((env.get("AzureWebJobsStorage__tableServiceUri") or "").strip()
              or (f"https://{account}.table.core.windows.net" if account else ""))
    queues = ((env.get("AzureWebJobsStorage__queueServiceUri") or "").strip()
              or (f"https://{account}.queue.core.windows.net" if account else ""))
    if tables and queues:
        return None, tables.rstrip("/"), queues.rstrip("/")
    raise ConfigError(
        "AzureWebJobsStorage is not set: give it a storage connection string (locally, copy "
        "local.settings.example.json to local.settings.json), or set AzureWebJobsStorage__accountName "
        "to sign in with the app's managed identity"
    )


# Each kind's settings: (field, the single-provider setting, the per-instance suffix), and which are required
# (alternatives in one tuple: one of them).
_KIND_FIELDS = {
    "console": [("outbox", "SMS_CONSOLE_OUTBOX", "OUTBOX")],
    "acs": [("connection_string", "ACS_CONNECTION_STRING", "CONNECTION_STRING"), ("from_number", "ACS_FROM_NUMBER", "FROM_NUMBER")],
    "twilio": [("account_sid", "TWILIO_ACCOUNT_SID", "ACCOUNT_SID"), ("auth_token", "TWILIO_AUTH_TOKEN", "AUTH_TOKEN"),
               ("from_number", "TWILIO_FROM_NUMBER", "FROM_NUMBER"),
               ("messaging_service_sid", "TWILIO_MESSAGING_SERVICE_SID", "MESSAGING_SERVICE_SID"),
               ("api_base_url", "TWILIO_API_BASE_URL", "API_BASE_URL")],
}
_REQUIRED = {"console": [], "acs": [("connection_string",), ("from_number",)],
             "twilio": [("account_sid",), ("auth_token",), ("from_number", "messaging_service_sid")]}
# A provider instance's name: what routes and timelines show, and (upper-cased, '-' as '_') its settings' infix.
PROVIDER_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
MAX_PROVIDERS = 16


def provider_instances(env: Mapping[str, str]) -> tuple[ProviderSettings, ...]:
    """The deployment's providers. SMS_PROVIDERS names instances (`acs-au,twilio-us`), each with its
    settings under SMS_PROVIDER_<NAME>_ (name upper-cased, '-' as '_'): _KIND (console, acs or twilio;
    without it, the name's first part), then its kind's: _CONNECTION_STRING and _FROM_NUMBER (acs);
    _ACCOUNT_SID, _AUTH_TOKEN and _FROM_NUMBER or _MESSAGING_SERVICE_SID (twilio); _OUTBOX (console);
    and _RATE_LIMIT_PER_SECOND. App settings hold one value each, so each secret can be its own Key Vault
    reference. Without SMS_PROVIDERS, SMS_PROVIDER and its settings make the one provider, named after its kind."""
    names = [n.strip() for n in (env.get("SMS_PROVIDERS") or "").split(",") if n.strip()]
    if not names:
        kind = (env.get("SMS_PROVIDER") or "").strip().lower() or "console"
        if kind not in _KIND_FIELDS:
            raise ConfigError(f"SMS_PROVIDER={kind!r} is not a provider this gateway knows ({', '.join(_KIND_FIELDS)})")
        fields = {field: (env.get(single) or "").strip() or None for field, single, _ in _KIND_FIELDS[kind]}
        return (_checked(ProviderSettings(kind, kind, **fields), f"SMS_PROVIDER={kind}", {f: s for f, s, _ in _KIND_FIELDS[kind]}),)
    if len(names) > MAX_PROVIDERS or len(set(names)) != len(names):
        raise ConfigError(f"SMS_PROVIDERS names at most {MAX_PROVIDERS} providers, each once: {', '.join(names)}")
    found = []
    for name in names:
        if not PROVIDER_NAME.fullmatch(name):
            raise ConfigError(f"SMS_PROVIDERS: {name!r} is not a provider name (a lowercase letter, then up to 31 "
                              "lowercase letters, digits or '-')")
        prefix = f"SMS_PROVIDER_{name.upper().replace('-', '_')}_"
        kind = (env.get(prefix + "KIND") or "").strip().lower() or name.split("-")[0]
        if kind not in _KIND_FIELDS:
            raise ConfigError(f"{prefix}KIND={kind!r}: provider {name} needs a kind this gateway knows ({', '.join(_KIND_FIELDS)})")
        fields = {field: (env.get(prefix + suffix) or "").strip() or None for field, _, suffix in _KIND_FIELDS[kind]}
        rate = _number(env, prefix + "RATE_LIMIT_PER_SECOND", 0.0, low=0, high=10_000)
        found.append(_checked(ProviderSettings(name, kind, rate_limit_per_second=rate, **fields), f"provider {name} ({kind})",
                              {f: prefix + suffix for f, _, suffix in _KIND_FIELDS[kind]}))
    return tuple(found)


def _checked(provider: ProviderSettings, what: str, setting_of: Mapping[str, str]) -> ProviderSettings:
    for alternatives in _REQUIRED[provider.kind]:
        if not any(getattr(provider, field) for field in alternatives):
            raise ConfigError(f"{what} needs {' or '.join(setting_of[f] for f in alternatives)} to be set")
    return provider


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    return int(_number(env, name, default, low=low, high=high, whole=True))


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float, whole: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {'whole number' if whole else 'number'}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={_plain(value)} is out of range ({_plain(low)} to {_plain(high)})")
    return value


def _routes(env: Mapping[str, str]) -> str | None:
    """SMS_ROUTES, when set: a routing table's text that reads as one (any provider name, for now)."""
    text = (env.get("SMS_ROUTES") or "").strip()
    if not text:
        return None
    try:
        parse_table(text, None)
    except ValidationFailed as exc:
        raise _routes_error(exc) from None
    return text


def default_routes(settings: Settings, provider_names: list[str]) -> RoutingTable:
    """The deployment's default routing table: SMS_ROUTES, its providers checked against the deployment's
    (ConfigError naming the setting and each problem), or everything through every provider, in the order named."""
    if settings.routes_text is None:
        return RoutingTable.through(*provider_names)
    try:
        return parse_table(settings.routes_text, provider_names)
    except ValidationFailed as exc:
        raise _routes_error(exc) from None


def _routes_error(refused: ValidationFailed) -> ConfigError:
    return ConfigError("SMS_ROUTES: " + "; ".join(e.message for e in refused.field_errors))


def _home_countries(env: Mapping[str, str]) -> tuple[str, ...]:
    """SMS_GUARD_HOME_COUNTRIES: ISO 3166 alpha-2 codes, comma-separated, or "*"; empty when not set."""
    raw = (env.get("SMS_GUARD_HOME_COUNTRIES") or "").strip()
    if not raw:
        return ()
    if raw == "*":
        return ("*",)
    codes = tuple(sorted({code.strip().upper() for code in raw.split(",") if code.strip()}))
    unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
    if unknown or not codes:
        raise ConfigError(f"SMS_GUARD_HOME_COUNTRIES={raw!r}: {', '.join(unknown) or 'nothing'} is not a country code "
                          "libphonenumber knows (ISO 3166 alpha-2, comma-separated, such as AU,NZ; or * for every country)")
    return codes


def _pumping(env: Mapping[str, str]) -> Rules:
    """SMS_PUMPING_*: the detector's window, minimum sends, delivered-rate floor, confirmation wait, block and prefix digits."""
    default = Rules()
    window = _int(env, "SMS_PUMPING_WINDOW_SECONDS", int(default.window.total_seconds()), low=10, high=7 * 86_400)
    wait = _int(env, "SMS_PUMPING_CONFIRM_WAIT_SECONDS", int(default.confirm_wait.total_seconds()), low=1, high=86_400)
    if wait >= window:
        raise ConfigError(f"SMS_PUMPING_CONFIRM_WAIT_SECONDS={wait} must be shorter than SMS_PUMPING_WINDOW_SECONDS={window}: "
                          "a send is judged once its receipt is due, inside the window")
    return Rules(
        window=timedelta(seconds=window),
        min_sends=_int(env, "SMS_PUMPING_MIN_SENDS", default.min_sends, low=1, high=100_000),
        delivered_floor=_number(env, "SMS_PUMPING_DELIVERED_FLOOR", default.delivered_floor, low=0, high=1),
        confirm_wait=timedelta(seconds=wait),
        block=timedelta(seconds=_int(env, "SMS_PUMPING_BLOCK_SECONDS", int(default.block.total_seconds()), low=1, high=7 * 86_400)),
        prefix_digits=_int(env, "SMS_PUMPING_PREFIX_DIGITS", default.prefix_digits, low=0, high=8),
    )


def _prices(env: Mapping[str, str]) -> PriceTable:
    """SMS_PRICES: the path of the operator's price table (CSV: sms/domain/prices.py), read once, at start. A
    relative path is the app's own folder's (where function_app.py is, deployed with it), whatever the
    worker's working directory."""
    path = (env.get("SMS_PRICES") or "").strip()
    if not path:
        return NO_PRICES
    try:
        with open(PROJECT_ROOT / path, encoding="utf-8-sig") as file:
            return parse_prices(file.read(), f"SMS_PRICES ({path})")
    except OSError as exc:
        raise ConfigError(f"SMS_PRICES={path!r} cannot be read: {exc.strerror or exc}") from None
    except PriceTableError as exc:
        raise ConfigError(str(exc)) from None


# A commId key is an HMAC key: at least 32 characters (from Key Vault, or `openssl rand -base64 32`), so it cannot be guessed.
MIN_COMMID_KEY_CHARS = 32


def _one_call(env: Mapping[str, str]) -> dict:
    key = _commid_key("SMS_COMMID_KEY", env.get("SMS_COMMID_KEY"))
    previous = _commid_key("SMS_COMMID_KEY_PREVIOUS", env.get("SMS_COMMID_KEY_PREVIOUS"))
    # On by default wherever there is a key: the key is what the readers need, and the one-call accept is the product's
    # accept (issue 30). `off` keeps the two-call accept, e.g. for one deployment while upgrading from a version
    # whose GET and DELETE cannot recognise a tagged id yet (README: Settings).
    on = _flag("SMS_ACCEPT_ONE_CALL", env.get("SMS_ACCEPT_ONE_CALL", ""), default=key is not None)
    if previous and not key:
        raise ConfigError("SMS_COMMID_KEY_PREVIOUS is set without SMS_COMMID_KEY: a rotation keeps the new key beside the previous one")
    if on and not key:
        raise ConfigError("SMS_ACCEPT_ONE_CALL is on without SMS_COMMID_KEY: a one-call accept's commId must be one GET and "
                          "DELETE can recognise before its rows exist")
    return {"commid_key": key, "commid_key_previous": previous, "accept_one_call": on}


def _commid_key(name: str, raw: str | None) -> str | None:
    value = (raw or "").strip()
    if value.startswith("@Microsoft.KeyVault("):
        # App Service passes an unresolved reference on as the setting's value (learn.microsoft.com/azure/app-service/
        # app-service-key-vault-references, "Troubleshoot Key Vault references"): never take it for the key.
        raise ConfigError(f"{name} is a Key Vault reference App Service could not resolve ({value}): check the app's "
                          "identity may read the vault's secrets and that the secret exists")
    if value and len(value) < MIN_COMMID_KEY_CHARS:
        raise ConfigError(f"{name} is {len(value)} characters long: a commId key needs at least {MIN_COMMID_KEY_CHARS} "
                          "(for example `openssl rand -base64 32`)")
    return value or None


def _flag(name: str, raw: str, default: bool = False) -> bool:
    text = raw.strip().lower()
    if not text:
        return default
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not true or false (on or off)")


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def load_local_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> None:
    """Copy local.settings.json "Values" into the environment, as Core Tools does.

    Variables already set in the environment win, so a shell export overrides the file.
    """
    env = os.environ if environ is None else environ
    path = path or PROJECT_ROOT / "local.settings.json"
    if not path.exists():
        return
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a valid local.settings.json: {exc}") from None
    for name, value in values.items():
        env.setdefault(name, str(value))


def host_json(path: Path | None = None) -> dict:
    """host.json is the one place queue semantics (encoding, retries) are set."""
    path = path or PROJECT_ROOT / "host.json"
    return json.loads(path.read_text(encoding="utf-8"))


def max_dequeue_count(host: dict | None = None) -> int:
    host = host_json() if host is None else host
    return int(host.get("extensions", {}).get("queues", {}).get("maxDequeueCount", 5))


def queue_message_encoding(host: dict | None = None) -> str:
    host = host_json() if host is None else host
    return host.get("extensions", {}).get("queues", {}).get("messageEncoding", "base64").lower()


def proxy_lookup_options() -> dict[str, bool]:
    """Options for azure-core clients. Their aiohttp sessions look for proxy settings in the
    environment on every request, in a worker thread: about 0.3 ms of CPU per storage call, a third
    of what accepting a message cost. The environment is fixed at start, so look once: with no
    proxy configured, switch the per-request lookup off; with one, leave the SDK's behaviour alone."""
    return {} if urllib.request.getproxies() else {"use_env_settings": False}
