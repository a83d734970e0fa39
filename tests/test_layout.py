"""Imports run one way: the wire contract knows neither the database nor the rules; sync/ is the engine only.

The first tests load modules in a fresh interpreter and see what came along.
The rest read the source: every `import` and `from ... import` of the
project's packages, at module level or inside a function (a lazy import is
still an import), into a graph of modules, which must have no circle and
whose arrows must run the ways the house rules say.
"""
import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import schemas.vocab
import server.models

WIRE_CONTRACT = ["schemas", "schemas.common", "schemas.couriers", "schemas.handheld", "schemas.sync", "schemas.tasks",
                 "schemas.vehicles", "schemas.vocab"]
ENGINE = ["sync", "sync.client", "sync.docs", "sync.feed", "sync.maintenance", "sync.pull", "sync.push",
          "sync.registry"]


def _loaded_by(modules: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after importing these (and nothing else)."""
    code = ("import importlib, json, sys; before = set(sys.modules)\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def _top(names: set[str]) -> set[str]:
    """The top-level packages among module names."""
    return {name.partition(".")[0] for name in names}


def test_the_wire_contract_loads_neither_the_app_nor_the_database():
    """Importing the schemas (all but the import parser, which raises domain errors) loads no server code."""
    loaded = _top(_loaded_by(WIRE_CONTRACT))
    assert not loaded & {"server", "sqlalchemy", "flask_sqlalchemy", "flask", "sync", "tools"}, loaded


def test_the_vocabularies_import_nothing():
    """schemas.vocab is a leaf: importing it loads only itself and its package."""
    assert _loaded_by(["schemas.vocab"]) == {"schemas", "schemas.vocab"}


def test_vocabularies_have_one_home():
    """Models neither define nor re-export a vocabulary; there is one place to add one."""
    vocabularies = [name for name in vars(schemas.vocab) if name.isupper()]
    assert "TASK_STATUSES" in vocabularies and "STAFF_ROLES" in vocabularies
    assert not [name for name in vocabularies if hasattr(server.models, name)]
    for module in ("couriers", "staff", "sync", "tasks", "vehicles"):
        models = importlib.import_module(f"server.models.{module}")
        # A model module may import a vocabulary (the same object), never define its own.
        own = [name for name in vocabularies
               if name in vars(models) and vars(models)[name] is not getattr(schemas.vocab, name)]
        assert not own, (module, own)


def test_the_sync_engine_holds_no_tools():
    """The load generator and the fleet simulator live in tools/; the engine never loads them."""
    assert importlib.util.find_spec("sync.loadgen") is None and importlib.util.find_spec("sync.fleet") is None
    assert importlib.util.find_spec("tools.loadgen") and importlib.util.find_spec("tools.fleet")
    assert "tools" not in _top(_loaded_by(ENGINE))


def test_the_reference_client_loads_no_server_code():
    """sync.client is what a handheld runs: it speaks HTTP and SQLite, never the server's modules."""
    assert not _top(_loaded_by(["sync.client"])) & {"server", "schemas", "sqlalchemy", "flask", "tools"}


ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "sync", "schemas", "tools", "scripts")


def _modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages by dotted name (a package by its own name, for its __init__.py)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The project module a dotted name lives in (its longest known prefix), or None for another library."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports, read from the source with ast.

    Every import statement counts, wherever it stands (a function, a branch,
    a try). `from package import name` is an arrow to the submodule when there
    is one, else to the package (its __init__.py defines the name: `from
    server import create_app`); relative imports are resolved against the
    module's package. An import of a.b.c is an arrow to a.b.c alone: Python
    runs the __init__.py of a and a.b on the way, but those hold no code of
    ours at import time (server/__init__.py's create_app imports the app's
    parts only when it is called), so an arrow from every module to its
    packages would tell nothing and make the factory part of every circle.
    The factory's own imports are arrows from `server`, like any other.
    server/models/__init__.py re-exports every model: `from server.models
    import Task` is an arrow to `server.models`, which has one to each model
    module, so what a model module imports is reached through it too.
    """
    modules = _modules(root)
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(_known(alias.name, modules) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module
                for alias in node.names:
                    targets.add(_known(f"{source}.{alias.name}", modules) if f"{source}.{alias.name}" in modules
                                else _known(source, modules))
            elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)
                  and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")):
                targets.add(_known(node.args[0].value, modules))
        graph[name] = targets - {None, name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def _within(name: str, *prefixes: str) -> bool:
    """Whether a module is one of these modules or packages, or inside one."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _arrows(graph: dict[str, set[str]], sources: tuple[str, ...], targets: tuple[str, ...]) -> list[str]:
    """Imports from modules under sources to modules under targets, as 'a -> b'."""
    return sorted(f"{module} -> {target}" for module, imported in graph.items() if _within(module, *sources)
                  for target in imported if _within(target, *targets))


def test_the_graph_sees_every_kind_of_import(tmp_path):
    """The reader itself: lazy, relative, from-package and importlib imports are arrows; a loop of them is a circle."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "server" / "__init__.py").write_text("def create_app():\n    from server import a\n")
    (tmp_path / "server" / "a.py").write_text("import os\nfrom . import b\n")
    (tmp_path / "server" / "b.py").write_text("def later():\n    from server.c import x\n")
    (tmp_path / "server" / "c.py").write_text("import importlib\nimportlib.import_module('server.a')\n")
    (tmp_path / "sync" / "d.py").write_text("from server import create_app\n")
    graph = import_graph(tmp_path)
    assert graph == {"server": {"server.a"}, "server.a": {"server.b"}, "server.b": {"server.c"},
                     "server.c": {"server.a"}, "sync.d": {"server"}}
    assert circles(graph) == [["server.a", "server.b", "server.c"]]


def test_no_import_circles():
    """No module reaches itself through imports: where two need each other, a base goes low and a view high.

    (STYLE.md, "Growing without circles".) A lazy import inside a function is
    an arrow like any other here, so a circle cannot be hidden in one.
    """
    assert circles(import_graph()) == []


# Which way imports run: (what, from modules under, to modules under, the arrows allowed all the same).
DIRECTIONS = [
    # The engine gets what it needs of the rules (op handlers, entity scopes, the attachment store)
    # from the registry that server.sync_wiring fills.
    ("the engine asks through its registry", ("sync",), ("server.services", "server.api", "server.sync_wiring"),
     ()),
    # Of the services only server.services.sync, the protocol's entry points for the HTTP layer, drives
    # the engine. What a rule tells the change feed beyond the rows it writes goes through server.changes,
    # which sync.feed reads at commit.
    ("the rules do not reach into the engine", ("server.services",), ("sync",),
     ("server.services.sync -> sync.pull", "server.services.sync -> sync.push", "server.services.sync -> sync.registry")),
    ("services import no view", ("server.services",), ("server.api",), ()),
    ("models import no rule, view or engine", ("server.models",), ("server.services", "server.api", "sync"), ()),
    ("tools drive the app through its services", ("tools",), ("server.models",), ()),
    # schemas.imports, the import file parser, reads the request (server.jsonio) and raises domain errors.
    ("the wire contract imports no server code", ("schemas",), ("server", "sync"),
     ("schemas.imports -> server.errors", "schemas.imports -> server.jsonio")),
]


@pytest.mark.parametrize(("what", "sources", "targets", "allowed"), DIRECTIONS, ids=[d[0] for d in DIRECTIONS])
def test_imports_run_the_ways_the_house_says(what, sources, targets, allowed):
    """Views -> services -> models; the engine asks through its registry; tools drive the app from outside."""
    assert [arrow for arrow in _arrows(import_graph(), sources, targets) if arrow not in allowed] == [], what
