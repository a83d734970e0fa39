"""Entry points of the sync protocol for the HTTP layer: who may push, and with what registry."""
import logging
from datetime import datetime

from flask import current_app

from server import metrics
from server.auth import Actor
from server.errors import Forbidden
from server.extensions import db
from server.services import receipts
from server.services.common import own_transaction
from sync import pull as pull_engine
from sync import push as push_engine
from sync.registry import Registry

log = logging.getLogger(__name__)


def registry() -> Registry:
    """This app's op and entity registry."""
    return current_app.extensions["fieldops_sync"]


def push(*, actor: Actor, device_id: str, ops: list[dict], device_now: datetime | None = None,
         last_seq: int | None = None) -> dict:
    """Apply a device's batch; a device may only push as itself."""
    if device_id != actor.device_id:
        raise Forbidden("device_id does not match the token's device.", code="device_mismatch")
    ops_registry = registry()
    answer = push_engine.push(registry=ops_registry, actor=actor, ops=ops, device_now=device_now,
                              skew_tolerance_s=current_app.config["CLOCK_SKEW_TOLERANCE_SECONDS"],
                              assigned_seq=last_seq)
    metrics.observe_push(ops=ops, response=answer, known_types=ops_registry.ops)
    # The op log keeps each result's entity as its stored doc: a receipt's page address is sealed there.
    for result in answer.get("results", ()):
        if result.get("entity"):
            result["entity"] = receipts.reveal_state(result["entity"])
    return answer


def pull(*, actor: Actor, cursor: str | None, limit: int) -> dict:
    """One page of the device's changes, with the company's name the courier says to customers
    (FIELDOPS_COMPANY_NAME, null when unset): read at each pull, so a change of the setting reaches every device."""
    pull_engine.take_rendered(db.session)  # none left over from a pull that failed
    page = pull_engine.pull(registry=registry(), actor=actor, cursor=cursor, limit=limit)
    page["company"] = {"name": current_app.config.get("COMPANY_NAME")}
    # A doc rendered because none was stored (rows seeded by a migration, changed by SQL) is stored now,
    # after the pull's read: the next pull reads it instead of rendering it again.
    rendered = pull_engine.take_rendered(db.session)
    if rendered:
        with own_transaction("handheld docs rendered at pull", log):
            pull_engine.store_rendered(db.session, rendered)
    return page
