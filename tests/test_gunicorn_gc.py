"""gunicorn workers: the start-up heap frozen, cycles collected between requests, not during them."""
import gc
import importlib
from types import SimpleNamespace

import pytest


@pytest.fixture
def conf(monkeypatch, tmp_path):
    """server.gunicorn_conf, with its metrics folder in tmp; the collector's state restored afterwards."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    module = importlib.import_module("server.gunicorn_conf")
    enabled = gc.isenabled()
    yield module
    gc.unfreeze()
    gc.enable() if enabled else gc.disable()


class _Cycle:
    """An object that refers to itself: only the cyclic collector frees it."""

    def __init__(self):
        self.me = self


def _worker(threads: int):
    return SimpleNamespace(cfg=SimpleNamespace(threads=threads))


def test_a_sync_worker_collects_only_after_each_request(conf):
    """After start-up the heap is frozen and the collector off; a request's cycle lives until post_request."""
    worker = _worker(threads=1)
    conf.post_worker_init(worker)
    assert gc.get_freeze_count() > 0 and not gc.isenabled()
    for _ in range(5000):  # far past any generation threshold: with the collector on, most would go
        _Cycle()
    assert sum(isinstance(o, _Cycle) for o in gc.get_objects()) == 5000
    conf.post_request(worker, None, {}, None)
    assert sum(isinstance(o, _Cycle) for o in gc.get_objects()) == 0


def test_a_threaded_worker_keeps_the_collector_on(conf):
    """With --threads > 1 another request may be running: the collector stays on, post_request does nothing."""
    worker = _worker(threads=4)
    conf.post_worker_init(worker)
    assert gc.get_freeze_count() > 0 and gc.isenabled()
    conf.post_request(worker, None, {}, None)
    assert gc.isenabled()
