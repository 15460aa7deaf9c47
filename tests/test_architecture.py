"""The import rules between apps, read from every module's imports with `ast`.

The layers, from the bottom: `core` (plumbing and the message contract), then `accounts`, then
the three services `pusher`, `validator` and `tracker`, which talk to each other only through
inbox and task names, never by import. `shippers` (the bulk and Loki doors) sits on top of
the pusher: it decodes a shipper's body and hands the items to the batch push. `alerts` sits
on top of the tracker: it reads the query language and counts, and hears of tracked messages
through the tracker's signal, which the tracker sends without knowing who listens. `dashboard`
is a page on top of the API. `config` wires everything together and may import anything.

An app reaches another (core aside, which is plumbing) only through its `services` (writes),
its `selectors` (reads), or a module it declares public in PUBLIC: the rest is its own business
and may change without the others noticing.
"""

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("core", "accounts", "pusher", "validator", "tracker", "shippers", "alerts", "dashboard")

# What each app may import among the project's apps (itself always).
ALLOWED = {
    "core": set(),
    "accounts": {"core"},
    "pusher": {"core", "accounts"},
    "validator": {"core"},
    "tracker": {"core", "accounts"},
    "shippers": {"core", "accounts", "pusher"},
    "alerts": {"core", "accounts", "tracker"},
    "dashboard": {"core"},
}
# The modules, besides services and selectors, that an app lets the others import.
PUBLIC = {
    "accounts": {"authentication", "exceptions", "tokens"},  # DRF wiring, errors, token user
    "pusher": {"otlp"},  # the OTLP record mapping and caps, which every other door reuses
    "tracker": {"query", "scope", "signals"},  # the query language, read scopes, tracked signal
}
# Libraries of a service that the queue must not know: a handler raises DrainRetry instead.
FORBIDDEN_LIBRARIES = {"core.queue": {"elasticsearch", "elasticsearch_dsl"}}


def _modules() -> Iterator[tuple[str, Path]]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(ROOT).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            yield ".".join(parts), path


def _imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """Each import in `path`: (module, names imported from it, line)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names], node.lineno


def _public(target: str, names: list[str]) -> bool:
    """Whether another app may import `target` (or these `names` of the app's package): its
    services, its selectors or a module it declares public."""
    top, _, rest = target.partition(".")
    modules = [rest.split(".")[0]] if rest else names
    allowed = {"services", "selectors", *PUBLIC.get(top, set())}
    return all(module in allowed for module in modules)


def _violations() -> list[str]:
    found = []
    for module, path in _modules():
        app = module.split(".")[0]
        for target, names, line in _imports(path):
            top = target.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line}"
            if top in ALLOWED and top != app and top not in ALLOWED[app]:
                found.append(f"{where}: {app} imports {target}")
            if top in ALLOWED and top != app:
                private = [name for name in names if name.startswith("_")]
                if private or any(part.startswith("_") for part in target.split(".")[1:]):
                    found.append(f"{where}: {app} reaches a private name of {target} {private}")
            if top in ALLOWED.get(app, set()) - {"core"} and not _public(target, names):
                found.append(f"{where}: {app} reaches {target}, not public in {top}")
            if top in FORBIDDEN_LIBRARIES.get(module, set()):
                found.append(f"{where}: {module} imports {target}")
    return found


def test_every_app_imports_only_the_layers_below_it() -> None:
    violations = _violations()
    assert violations == [], "\n".join(violations)


def test_the_rules_cover_every_app_in_the_tree() -> None:
    # A new app folder must be placed in the layers before it can import anything.
    apps_on_disk = {
        path.parent.name
        for path in ROOT.glob("*/apps.py")
        if (path.parent / "__init__.py").exists()
    }
    assert apps_on_disk == set(APPS)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("core", "from tracker.documents import index_alias\n", "core imports tracker.documents"),
        ("accounts", "from pusher.selectors import x\n", "accounts imports pusher.selectors"),
        ("tracker", "import validator.services\n", "tracker imports validator.services"),
        ("validator", "from tracker import services\n", "validator imports tracker"),
        ("pusher", "from accounts.selectors import _key\n", "reaches a private name"),
        ("alerts", "from tracker.documents import x\n", "not public in tracker"),
        ("tracker", "import accounts.models\n", "not public in accounts"),
    ],
)
def test_the_checker_catches_each_kind_of_breach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str, expected: str
) -> None:
    # The rules run over a throwaway tree holding one offending module, so a checker that
    # silently matched nothing could not pass.
    for app in APPS:
        (tmp_path / app).mkdir()
        (tmp_path / app / "__init__.py").write_text("")
    (tmp_path / module / "offender.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    violations = _violations()
    assert len(violations) == 1
    assert expected in violations[0]
