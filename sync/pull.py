"""Pull: the device's scope, then what changed since, in change order.

A cursor is either
  f.<H>.<entity>.<id>  - listing the whole scope; H is the feed position the listing started at
  i.<P>                - incremental: every change up to P is reflected on the device
wrapped with this database's epoch and made opaque. An incremental page never
moves the cursor past a change a transaction in flight could still commit
behind it: feed positions are assigned in commit order (server.database.
take_feed_lock) and the whole pull reads one snapshot, so every position at
or below the highest one visible is final.
"""
import base64
import functools
import hashlib
from dataclasses import dataclass

from sqlalchemy import bindparam, func, or_, select, union_all

from server import metrics
from server.auth import Actor
from server.clock import local_day_start, local_zone, utcnow
from server.database import is_read_only
from server.errors import ValidationFailed
from server.extensions import db
from server.models import Change, Device, SyncState
from sync import docs
from sync.registry import Registry


@dataclass(frozen=True)
class Cursor:
    """A decoded cursor."""

    mode: str  # "f" (full listing) or "i" (incremental)
    position: int
    after: tuple[int, str] | None = None  # full listing: (entity type index, id) last sent


def encode(epoch: str, cursor: Cursor) -> str:
    """Make a cursor opaque."""
    raw = f"{epoch}.{cursor.mode}.{cursor.position}"
    if cursor.after is not None:
        raw += f".{cursor.after[0]}.{cursor.after[1]}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str) -> tuple[str, Cursor]:
    """(epoch, cursor); a cursor that is not one of ours at all is a 422."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        epoch, mode, position, *rest = raw.split(".", 4)
        if mode not in ("f", "i") or (mode == "f") != (len(rest) == 2):
            raise ValueError(mode)
        after = (int(rest[0]), rest[1]) if rest else None
        return epoch, Cursor(mode=mode, position=int(position), after=after)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("The cursor is not valid.",
                               fields={"cursor": ["Not a cursor this server issued."]}) from exc


def checksum(items: list[tuple[str, str, int]]) -> dict:
    """Count and SHA-256 over "entity:id:version" lines, sorted: the drift check."""
    lines = [f"{entity}:{entity_id}:{version}" for entity, entity_id, version in items]
    lines.sort()
    return {"count": len(lines), "checksum": hashlib.sha256("\n".join(lines).encode()).hexdigest()}


# Built once: building a statement costs more than running these.
_STATE = select(
    select(SyncState.value).where(SyncState.key == "epoch").scalar_subquery(),
    select(SyncState.value).where(SyncState.key == "compacted_through").scalar_subquery(),
    select(Device.last_seq).where(Device.id == bindparam("device_id")).scalar_subquery(),
    select(func.coalesce(func.max(Change.position), 0)).scalar_subquery())


# The feed of a courier's changes (and everyone's) after a position, in order.
_SINCE = (select(Change.position, Change.entity, Change.entity_id, Change.at)
          .where(Change.position > bindparam("position"),
                 or_(Change.courier_id == bindparam("courier_id"), Change.courier_id.is_(None)))
          .order_by(Change.position).limit(bindparam("limit")))


def _snapshot() -> None:
    """Read everything below in one snapshot.

    A read request already does (server.database: SQLite's read transaction,
    REPEATABLE READ on PostgreSQL); anything else starts one afresh here.
    """
    if db.session.get_bind().dialect.name == "postgresql" and not is_read_only():
        db.session.commit()
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


@functools.lru_cache(maxsize=64)
def _versions_statement(model):
    """(id, version) of a list of ids of one model (a tombstone's version); built once."""
    return select(model.id, model.version).where(model.id.in_(bindparam("ids", expanding=True)))


def _changes_for(registry: Registry, courier_id: str, keys: list[tuple[str, str]], day_start) -> list[dict]:
    """Current state for each (entity, id) in order: its stored JSON if in scope, else a tombstone."""
    by_type: dict[str, list[str]] = {}
    for entity, entity_id in keys:
        by_type.setdefault(entity, []).append(entity_id)
    current = docs.read(db.session, registry, courier_id, by_type, day_start)
    tombstones = {}
    for name, ids in by_type.items():
        gone = [entity_id for entity_id in ids if entity_id not in current[name]]
        if gone:
            tombstones[name] = dict(db.session.execute(
                _versions_statement(registry.entities[name].model), {"ids": gone}).all())
    out = []
    for entity, entity_id in keys:
        doc = current[entity].get(entity_id)
        if doc is None:
            out.append({"entity": entity, "id": entity_id, "deleted": True,
                        "version": tombstones[entity].get(entity_id)})
        else:
            out.append({"entity": entity, "id": entity_id, "deleted": False, "version": doc[0], "data": doc[1]})
    return out


def _first_listing(registry: Registry, courier_id: str,
                   day_start) -> tuple[list[tuple[int, str, str, int]], list[dict]]:
    """The whole scope in listing order, and a change for each entity in it."""
    current = docs.read_scope(db.session, registry, courier_id, day_start)
    items = sorted((index, name, entity_id, version, data)
                   for index, name in enumerate(registry.entities)
                   for entity_id, (version, data) in current[name].items())
    return ([item[:4] for item in items],
            [{"entity": name, "id": entity_id, "deleted": False, "version": version, "data": data}
             for _, name, entity_id, version, data in items])


@functools.lru_cache(maxsize=16)
def _scope_statement(registry: Registry):
    """(entity, id, version) of every entity type's scope, as one UNION ALL; built once."""
    return union_all(*(entity_type.scoped(entity_type.model.id.label("id"), entity_type.model.version)
                       for entity_type in registry.entities.values()))


def _scope_rows(registry: Registry, courier_id: str, day_start) -> list[tuple[str, str, int]]:
    """(entity, id, version) of the whole scope, in no order (rows unpack as tuples; Result.tuples() is deprecated)."""
    return db.session.execute(_scope_statement(registry), {"courier_id": courier_id, "day_start": day_start}).all()


def _scope(registry: Registry, courier_id: str, day_start) -> list[tuple[int, str, str, int]]:
    """The whole scope as (type index, entity, id, version), in listing order."""
    index = {name: i for i, name in enumerate(registry.entities)}
    return sorted((index[name], name, entity_id, version)
                  for name, entity_id, version in _scope_rows(registry, courier_id, day_start))


def take_rendered(session) -> list[dict]:
    """The docs the last pull had to render (none stored, or behind), forgotten here: for the caller to store
    after the pull's read (store_rendered), outside it."""
    return docs.take_rendered(session)


def store_rendered(session, rows: list[dict]) -> None:
    """Store docs a pull rendered, so the next pull reads them (never over a newer doc)."""
    docs.store(session, rows)


def pull(*, registry: Registry, actor: Actor, cursor: str | None, limit: int) -> dict:
    """One page of changes for the device, with last_seq and (on the last page) the scope checksum.

    Each change's `data` is the entity's stored JSON (an orjson.Fragment): the
    answer must be encoded with orjson (server.jsonio), not through a schema.
    """
    _snapshot()
    epoch, compacted_through, last_seq, high = db.session.execute(
        _STATE, {"device_id": actor.device_id}).one()
    courier_id = actor.courier_id
    day_start = local_day_start(utcnow())
    current = Cursor(mode="f", position=high)
    if cursor:
        cursor_epoch, current = decode(cursor)
        if cursor_epoch != epoch or current.position > high or current.position < int(compacted_through):
            metrics.observe_pull(mode="reset")
            return {"changes": [], "cursor": None, "has_more": True, "reset": True,
                    "last_seq": last_seq, "timezone": local_zone().key}
    scope = None
    if current.mode == "f":
        metrics.observe_pull(mode="full")
        if current.after is None:
            # The first page: the whole scope with its docs, in one query.
            scope, changes = _first_listing(registry, courier_id, day_start)
            page = scope[:limit]
            changes = changes[:limit]
        else:
            scope = _scope(registry, courier_id, day_start)
            page = [s for s in scope if s[:1] + s[2:3] > current.after][:limit]
            changes = _changes_for(registry, courier_id, [(s[1], s[2]) for s in page], day_start)
        if page and page[-1] != scope[-1]:
            next_cursor = Cursor(mode="f", position=current.position, after=(page[-1][0], page[-1][2]))
            has_more = True
        else:
            next_cursor = Cursor(mode="i", position=current.position)
            has_more = high > current.position
    else:
        rows = db.session.execute(_SINCE, {"position": current.position, "courier_id": courier_id,
                                           "limit": limit}).all()
        metrics.observe_pull(mode="incremental", lag_changes=high - current.position,
                             lag_seconds=(utcnow() - rows[0].at).total_seconds() if rows else None)
        has_more = len(rows) == limit
        # The last page jumps to the snapshot's head, past other couriers' changes too.
        next_cursor = Cursor(mode="i", position=rows[-1].position if has_more else high)
        latest: dict[tuple[str, str], int] = {}
        for row in rows:
            latest[(row.entity, row.entity_id)] = row.position
        keys = sorted(latest, key=latest.get)
        changes = _changes_for(registry, courier_id, keys, day_start)
    response = {"changes": changes, "cursor": encode(epoch, next_cursor), "has_more": has_more,
                "last_seq": last_seq, "timezone": local_zone().key}
    if not has_more:
        # An incremental pull needs the scope only for its checksum, which sorts its own lines.
        response["scope"] = checksum([(s[1], s[2], s[3]) for s in scope] if scope is not None
                                     else _scope_rows(registry, courier_id, day_start))
    return response
