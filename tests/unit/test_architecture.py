"""The direction of the arrows (docs/architecture.md), checked by package, so a new module joins its
layer's rules by where it is put:

- sms.domain imports nothing of the gateway outside itself, and no Azure SDK or web framework;
- sms.usecases imports the domain, the ports (sms.storage, sms.providers), each other and the two
  cross-cutting helpers (sms.telemetry, sms.logs): no adapter, no wire format, no entry point, no Azure;
- adapters (sms.storage's and sms.providers' modules, sms.webhooks, the wiring) import no entry point;
- nothing the deployed app loads comes from sms.dev, the local tooling .funcignore leaves out.
"""
import subprocess
import sys

from sms.config import PROJECT_ROOT

SMS = PROJECT_ROOT / "sms"


def modules_in(package: str) -> list[str]:
    """Every module of `package` (dotted), found on disk."""
    folder = PROJECT_ROOT / package.replace(".", "/")
    found = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


DOMAIN = modules_in("sms.domain")
USECASES = modules_in("sms.usecases")
PORTS = ("sms.storage", "sms.providers")
SHIMS = ("sms.devhost", "sms.webhooks.listen")  # README's `python -m` commands, kept: they run sms.dev's tools
ADAPTERS = [m for m in modules_in("sms.storage") + modules_in("sms.providers") + modules_in("sms.webhooks")
            if m not in PORTS + SHIMS] + ["sms.bootstrap", "sms.gateway"]
ENTRY_POINTS = ("sms.entrypoints", "sms.wire", "function_app")


def loaded_by(modules: list[str]) -> set[str]:
    """Every module importing `modules` loads, in a fresh interpreter (this one has loaded everything)."""
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def ours(loaded: set[str]) -> set[str]:
    return {m for m in loaded if m == "sms" or m.startswith("sms.")}


def test_the_domain_imports_nothing_but_itself():
    loaded = loaded_by(DOMAIN)
    assert sorted(ours(loaded) - {"sms", "sms.domain"} - set(DOMAIN)) == []
    assert sorted(m for m in loaded if m.startswith(("azure", "aiohttp", "pydantic", "opentelemetry"))) == []


def test_the_use_cases_import_the_domain_the_ports_and_each_other_only():
    loaded = loaded_by(USECASES)
    allowed = {"sms", "sms.domain", *DOMAIN, *USECASES, *PORTS, "sms.telemetry", "sms.logs"}
    assert sorted(ours(loaded) - allowed) == []
    assert sorted(m for m in loaded if m.startswith(("azure.functions", "azure.data", "azure.storage", "azure.core"))) == []


def test_adapters_do_not_import_the_entry_points_or_the_local_tooling():
    loaded = loaded_by(ADAPTERS)
    assert sorted(m for m in loaded if m.startswith(ENTRY_POINTS + ("sms.dev",))) == []


def test_the_deployed_app_loads_nothing_of_the_local_tooling():
    """function_app.py and everything it indexes work without sms/dev, which the package leaves out: the
    app indexes all its functions with sms.dev made unimportable."""
    code = ("import sys; sys.modules['sms.dev'] = None\n"
            "import function_app\n"
            "print(len(function_app.app.get_functions()))\n"
            "print('\\n'.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) > 40 and sorted(m for m in out[1:] if m.startswith("sms.dev.")) == []
    assert "sms/dev/" in (PROJECT_ROOT / ".funcignore").read_text().split()


def test_every_module_is_in_a_layer():
    """A module at the top of sms/ is wiring or cross-cutting, and named here; anything else belongs in a
    layer's package, where these rules see it."""
    top = {p.stem for p in SMS.glob("*.py")}
    assert top == {"__init__", "__main__", "bootstrap", "config", "gateway", "logs", "telemetry", "devhost"}
