"""Imports run one way: the wire contract knows neither the database nor the rules; sync/ is the engine only."""
import importlib.util
import json
import subprocess
import sys

import schemas.vocab
import server.models

WIRE_CONTRACT = ["schemas", "schemas.common", "schemas.couriers", "schemas.sync", "schemas.tasks",
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
