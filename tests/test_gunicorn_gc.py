"""gunicorn workers: the start-up heap frozen, cycles collected between requests, not during them, at CPython's pace."""
import gc
import importlib
from collections import deque
from types import SimpleNamespace

import pytest


@pytest.fixture
def conf(monkeypatch, tmp_path):
    """server.gunicorn_conf, with its metrics folder in tmp; the collector's state restored afterwards."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    module = importlib.import_module("server.gunicorn_conf")
    enabled = gc.isenabled()
    yield module
    module._collector.__init__()
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


@pytest.fixture
def collections():
    """The generation of every collection the test runs, in order."""
    seen = []

    def record(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


def test_requests_that_keep_nothing_never_walk_the_long_lived_heap(conf, collections):
    """Each request's garbage goes with a young collection, the middle one every tenth; the warm heap is left alone."""
    worker = _worker(threads=1)
    conf.post_worker_init(worker)
    caches = [_Cycle() for _ in range(20_000)]  # what the first requests build and keep: statement caches, pools
    for _ in range(20):
        conf.post_request(worker, None, {}, None)
    collections.clear()
    for _ in range(100):
        [_Cycle() for _ in range(200)]
        conf.post_request(worker, None, {}, None)
    assert collections.count(0) == 90 and collections.count(1) == 10 and 2 not in collections
    assert len(caches) == 20_000


def test_garbage_that_grew_old_is_collected_as_the_old_heap_grows(conf, collections):
    """A bounded cache evicts cycles that lived through many requests: full collections keep the heap flat."""
    worker = _worker(threads=1)
    conf.post_worker_init(worker)
    cache = deque(maxlen=5000)  # an LRU of cycles, as SQLAlchemy's statement cache or an identity map
    for _ in range(200):  # 100,000 cycles pass through it
        cache.extend(_Cycle() for _ in range(500))
        conf.post_request(worker, None, {}, None)
    assert 2 in collections
    assert sum(isinstance(o, _Cycle) for o in gc.get_objects()) < 2 * 5000


def test_a_threaded_worker_keeps_the_collector_on(conf):
    """With --threads > 1 another request may be running: the collector stays on, post_request does nothing."""
    worker = _worker(threads=4)
    conf.post_worker_init(worker)
    assert gc.get_freeze_count() > 0 and gc.isenabled()
    conf.post_request(worker, None, {}, None)
    assert gc.isenabled()
