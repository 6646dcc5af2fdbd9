"""The direction of the arrows (docs/architecture.md): the core (use cases, model, rules, ports) imports
nothing of the ServiceStack wire format or of Azure Functions, so a change to either stops at the
entry points; adapters never import the entry points."""
import subprocess
import sys

from sms.config import PROJECT_ROOT

CORE = [
    "sms.usecases.accept", "sms.usecases.send_now", "sms.usecases.commands", "sms.usecases.dispatch", "sms.usecases.idempotency",
    "sms.usecases.inbound", "sms.usecases.job_rows", "sms.usecases.optimistic", "sms.usecases.status",
    "sms.usecases.sweep", "sms.usecases.ledger", "sms.usecases.retention", "sms.usecases.webhooks",
    "sms.usecases.announce", "sms.usecases.delivery", "sms.usecases.paging", "sms.webhooks.attempts", "sms.usecases.cancel",
    "sms.usecases.licensees", "sms.usecases.held", "sms.quiet", "sms.events", "sms.destinations", "sms.model", "sms.transitions",
    "sms.errors", "sms.validation", "sms.instants", "sms.optouts",
    "sms.auth", "sms.pacing", "sms.phone", "sms.segments", "sms.storage", "sms.providers", "sms.gateway",
]
ADAPTERS = ["sms.storage.tables", "sms.storage.ledger", "sms.storage.webhooks", "sms.storage.inbound", "sms.storage.idempotency",
            "sms.storage.queues", "sms.storage.events", "sms.storage.shards", "sms.storage.licensees", "sms.storage.limits", "sms.storage.refusals",
            "sms.storage.requests", "sms.storage.sdk_requests", "sms.storage.handwritten.sending", "sms.storage.handwritten.transport",
            "sms.storage.handwritten.signing", "sms.storage.handwritten.retries", "sms.storage.handwritten.batch_request",
            "sms.storage.handwritten.batch_answer", "sms.storage.handwritten.job_put", "sms.storage.handwritten.odata",
            "sms.providers.acs", "sms.providers.twilio", "sms.providers.console", "sms.bootstrap",
            "sms.webhooks.signing", "sms.webhooks.sender", "sms.webhooks.backoff", "sms.webhooks.listen"]
ENTRY_POINTS = ("sms.api", "sms.callbacks", "sms.worker", "sms.cli", "sms.devhost", "function_app")


def imported_by(modules: list[str]) -> set[str]:
    """Every module importing `modules` loads, in a fresh interpreter (this one has loaded everything)."""
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_core_imports_neither_the_wire_format_nor_azure_functions():
    loaded = imported_by(CORE)
    assert sorted(m for m in loaded if m.startswith(("sms.wire", "azure.functions"))) == []
    assert sorted(m for m in loaded if m.startswith(ENTRY_POINTS)) == []


def test_adapters_do_not_import_the_entry_points():
    loaded = imported_by(ADAPTERS)
    assert sorted(m for m in loaded if m.startswith(ENTRY_POINTS)) == []


def test_each_core_module_is_checked():
    """A new module under sms/usecases joins the check, or this fails."""
    modules = {f"sms.usecases.{p.stem}" for p in (PROJECT_ROOT / "sms" / "usecases").glob("*.py") if p.stem != "__init__"}
    assert modules <= set(CORE)
