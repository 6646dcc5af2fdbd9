"""`make run` installs what running needs, not the test tools (which took 219 s on a fresh machine)."""
import os
import subprocess
import sys

from sms.config import PROJECT_ROOT

# Import names of what only requirements-dev.txt brings.
DEV_ONLY = ("pytest", "pytest_asyncio", "hypothesis", "schemathesis", "servicestack", "matplotlib", "gsm0338", "ruff")


def _make_plan(target: str) -> str:
    """What `make <target>` would run on a fresh clone (-B: as if nothing were installed yet)."""
    return subprocess.run(["make", "-n", "-B", target], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout


def test_make_run_installs_only_the_runtime_requirements():
    plan = _make_plan("run")
    assert "pip install --quiet -r requirements.txt" in plan
    assert "requirements-dev.txt" not in plan
    assert "npm ci" in plan  # Azurite


def test_make_test_installs_the_test_tools_too():
    plan = _make_plan("test")
    assert "-r requirements.txt" in plan and "-r requirements-dev.txt" in plan


def test_what_make_run_starts_imports_nothing_from_the_dev_requirements():
    blocker = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DEV_ONLY!r}:
            raise ImportError(name + " is a dev-only requirement")
sys.meta_path.insert(0, Block())
import function_app, sms.dev.localrun, sms.dev.host, sms.devhost, sms.entrypoints.cli
function_app.app.get_functions()
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", blocker], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_dev_only_name_is_really_only_in_the_dev_requirements():
    runtime = (PROJECT_ROOT / "requirements.txt").read_text().lower()
    dev = (PROJECT_ROOT / "requirements-dev.txt").read_text().lower()
    for name in DEV_ONLY:
        distribution = name.replace("_", "-")
        assert distribution in dev and distribution not in runtime


def test_every_npm_package_supports_the_node_version_readme_names():
    """npm ci warned EBADENGINE when a newer Azurite wanted Node 22 and README asked only for Node."""
    import json
    import re

    named = re.search(r"Node\.js (\d+\.\d+) or newer", (PROJECT_ROOT / "README.md").read_text())
    assert named, "README names the Node.js version it needs"
    engines = {path: meta["engines"]["node"] for path,
               meta in json.loads((PROJECT_ROOT / "package-lock.json").read_text())["packages"].items()
               if isinstance(meta.get("engines"), dict) and "node" in meta["engines"]}
    assert "node_modules/azurite" in engines
    check = ("const semver = require('semver'); const engines = JSON.parse(process.argv[1]);"
             "console.log(JSON.stringify(Object.entries(engines).filter(([p, r]) => !semver.satisfies(process.argv[2], r))))")
    result = subprocess.run(["node", "-e", check, json.dumps(engines), named.group(1) + ".0"], cwd=PROJECT_ROOT,
                            env={**os.environ, "NODE_PATH": str(PROJECT_ROOT / "node_modules")}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
