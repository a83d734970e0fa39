"""Entry points of the sync protocol for the HTTP layer: who may push, and with what registry."""
from datetime import datetime

from flask import current_app

from server import metrics
from server.auth import Actor
from server.errors import Forbidden
from sync import pull as pull_engine
from sync import push as push_engine
from sync.registry import Registry


def registry() -> Registry:
    """This app's op and entity registry."""
    return current_app.extensions["fieldops_sync"]


def push(*, actor: Actor, device_id: str, ops: list[dict], device_now: datetime | None = None) -> dict:
    """Apply a device's batch; a device may only push as itself."""
    if device_id != actor.device_id:
        raise Forbidden("device_id does not match the token's device.", code="device_mismatch")
    ops_registry = registry()
    response = push_engine.push(registry=ops_registry, actor=actor, ops=ops, device_now=device_now,
                                skew_tolerance_s=current_app.config["CLOCK_SKEW_TOLERANCE_SECONDS"])
    metrics.observe_push(ops=ops, response=response, known_types=ops_registry.ops)
    return response


def pull(*, actor: Actor, cursor: str | None, limit: int) -> dict:
    """One page of the device's changes."""
    return pull_engine.pull(registry=registry(), actor=actor, cursor=cursor, limit=limit)
