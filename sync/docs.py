"""Materialised handheld documents: each synced entity's JSON, kept current at write time.

Pull is the hot read path: a device lists its whole scope after every reset,
and a fleet pulls all day. Loading a task with its parcels, fees and newest
notes and dumping it through marshmallow costs ~0.3 ms; reading a stored JSON
text costs microseconds. The feed already knows, at commit, which entities
changed; for each of them it also writes the handheld's JSON (EntityType.dump)
into sync_docs, in the same transaction as the feed row, so a doc is exactly
as consistent as the feed.

A doc carries the entity version it shows. Readers compare it with the
entity's own version and render afresh when the doc is behind or missing (a
row changed by SQL that bypassed the ORM, data from before this table), so a
stale doc costs time, never correctness. `rebuild()` brings every doc up to
date (run by `fieldops sync-maintain`).
"""
import functools
from datetime import datetime

import orjson
from sqlalchemy import and_, bindparam, delete, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from server.models import SyncDoc
from sync.registry import EntityType, Registry

_DUMPED = "fieldops_docs_dumped"
_RENDERED = "fieldops_docs_rendered"  # docs a read rendered because none showed the entity's version


def dump(session: Session, entity_type: EntityType, objs: list) -> dict[str, dict]:
    """Dump entities for the handheld, remembering each dump so the commit need not repeat it."""
    data = entity_type.dump(objs)
    remembered = session.info.setdefault(_DUMPED, {})
    for obj in objs:
        remembered[(entity_type.name, obj.id)] = (obj.version, data[obj.id])
    return data


def forget(session: Session) -> None:
    """Drop remembered dumps (the transaction rolled back)."""
    session.info.pop(_DUMPED, None)


@functools.lru_cache(maxsize=4)
def _upsert_statement(dialect: str):
    """Insert or replace docs; built once per dialect."""
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SyncDoc.__table__)
    # A writer that rendered from an older snapshot (a feed touch that holds no
    # row lock) must not put an older doc over a newer one.
    return stmt.on_conflict_do_update(
        index_elements=[SyncDoc.entity, SyncDoc.entity_id],
        set_={"version": stmt.excluded.version, "body": stmt.excluded.body},
        where=SyncDoc.version <= stmt.excluded.version)


def _upsert(session: Session, rows: list[dict]) -> None:
    """Insert or replace docs, in one statement."""
    session.execute(_upsert_statement(session.get_bind().dialect.name), rows)


def write(session: Session, registry: Registry, keys: set[tuple[str, str]]) -> None:
    """Bring the docs of these (entity, id) up to date; called by the feed before commit, after the flush.

    A dump made earlier in this transaction is reused when the entity's version
    has not moved since; everything else is loaded and dumped here.
    """
    remembered = session.info.pop(_DUMPED, {})
    by_type: dict[str, list[str]] = {}
    for entity, entity_id in keys:
        if entity in registry.entities:
            by_type.setdefault(entity, []).append(entity_id)
    rows, gone = [], []
    for name, ids in by_type.items():
        entity_type = registry.entities[name]
        stale = []
        for entity_id in ids:
            obj = session.identity_map.get(identity_key(entity_type.model, entity_id))
            hit = remembered.get((name, entity_id))
            if obj is not None and hit is not None and hit[0] == obj.version:
                rows.append({"entity": name, "entity_id": entity_id, "version": hit[0],
                             "body": orjson.dumps(hit[1]).decode()})
            else:
                stale.append(entity_id)
        if stale:
            objs = entity_type.load(stale)
            data = entity_type.dump(objs)
            rows.extend({"entity": name, "entity_id": obj.id, "version": obj.version,
                         "body": orjson.dumps(data[obj.id]).decode()} for obj in objs)
            found = {obj.id for obj in objs}
            gone.extend((name, entity_id) for entity_id in stale if entity_id not in found)
    if rows:
        _upsert(session, sorted(rows, key=lambda r: (r["entity"], r["entity_id"])))
    for name, entity_id in gone:
        session.execute(delete(SyncDoc).where(SyncDoc.entity == name, SyncDoc.entity_id == entity_id))


_AT_VERSIONS = select(SyncDoc.entity_id, SyncDoc.version, SyncDoc.body).where(
    SyncDoc.entity == bindparam("entity"), SyncDoc.entity_id.in_(bindparam("ids", expanding=True)))


def at_versions(session: Session, entity: str, versions: dict[str, int | None]) -> dict[str, dict]:
    """{id: body} of the stored docs that show exactly the given versions (others are left out)."""
    wanted = {entity_id: version for entity_id, version in versions.items() if version is not None}
    if not wanted:
        return {}
    rows = session.execute(_AT_VERSIONS, {"entity": entity, "ids": list(wanted)})
    return {entity_id: orjson.loads(body) for entity_id, version, body in rows if wanted[entity_id] == version}


def _doc_of(entity_type: EntityType):
    """Join condition: the entity's stored doc."""
    return and_(SyncDoc.entity == entity_type.name, SyncDoc.entity_id == entity_type.model.id)


def _docs_select(entity_type: EntityType):
    """(entity, id, version, doc_version, body) of the entities in a courier's scope today."""
    model = entity_type.model
    return (entity_type.scoped(model.id.label("id"), model.version.label("version"),
                               SyncDoc.version.label("doc_version"), SyncDoc.body.label("body"))
            .outerjoin(SyncDoc, _doc_of(entity_type)))


# Built once (building a statement costs more than running it here).
@functools.lru_cache(maxsize=64)
def _by_id_statement(registry: Registry, names: tuple[str, ...]):
    """_docs_select for a list of ids of each of these entity types, as one UNION ALL (bound as ids_<type>)."""
    return union_all(*(_docs_select(registry.entities[name]).where(
        registry.entities[name].model.id.in_(bindparam(f"ids_{name}", expanding=True))) for name in names))


@functools.lru_cache(maxsize=16)
def _scope_statement(registry: Registry):
    """_docs_select of every entity type, as one UNION ALL (one round trip)."""
    return union_all(*(_docs_select(entity_type) for entity_type in registry.entities.values()))


def _current(session: Session, registry: Registry, rows) -> dict[str, dict[str, tuple[int, orjson.Fragment]]]:
    """{entity: {id: (version, JSON)}}: the stored doc where it shows the entity's version, else a fresh render."""
    found: dict[str, dict[str, tuple[int, str]]] = {name: {} for name in registry.entities}
    behind: dict[str, list[str]] = {}
    for name, entity_id, version, doc_version, body in rows:
        if doc_version == version:
            found[name][entity_id] = (version, body)
        else:
            behind.setdefault(name, []).append(entity_id)
    for name, ids in behind.items():
        entity_type = registry.entities[name]
        objs = entity_type.load(ids)
        data = entity_type.dump(objs)
        rendered = [{"entity": name, "entity_id": obj.id, "version": obj.version,
                     "body": orjson.dumps(data[obj.id]).decode()} for obj in objs]
        found[name].update({row["entity_id"]: (row["version"], row["body"]) for row in rendered})
        session.info.setdefault(_RENDERED, []).extend(rendered)
    out: dict[str, dict[str, tuple[int, orjson.Fragment]]] = {}
    for name, stored in found.items():
        reveal = registry.entities[name].reveal
        bodies = [body for _, body in stored.values()]
        if reveal is not None:
            bodies = reveal(bodies)
        out[name] = {entity_id: (version, orjson.Fragment(body))
                     for (entity_id, (version, _)), body in zip(stored.items(), bodies, strict=True)}
    return out


def take_rendered(session: Session) -> list[dict]:
    """The docs a read had to render (missing or behind), to be stored by store(); forgotten here."""
    return session.info.pop(_RENDERED, [])


def store(session: Session, rows: list[dict]) -> None:
    """Store docs rendered by a read, so the next read serves them (never over a newer doc)."""
    _upsert(session, sorted(rows, key=lambda r: (r["entity"], r["entity_id"])))


def read(session: Session, registry: Registry, courier_id: str, ids_by_entity: dict[str, list[str]],
         day_start: datetime) -> dict[str, dict[str, tuple[int, orjson.Fragment]]]:
    """{entity: {id: (version, JSON)}} for those of the ids in the courier's scope today (the rest are tombstones)."""
    if not ids_by_entity:
        return _current(session, registry, [])
    names = tuple(sorted(ids_by_entity))
    rows = session.execute(_by_id_statement(registry, names),
                           {"courier_id": courier_id, "day_start": day_start,
                            **{f"ids_{name}": ids_by_entity[name] for name in names}}).all()
    return _current(session, registry, rows)


def read_scope(session: Session, registry: Registry, courier_id: str,
               day_start: datetime) -> dict[str, dict[str, tuple[int, orjson.Fragment]]]:
    """{entity: {id: (version, JSON)}} for the courier's whole scope today, in one query."""
    return _current(session, registry, session.execute(
        _scope_statement(registry), {"courier_id": courier_id, "day_start": day_start}).all())


def rebuild(session: Session, registry: Registry, batch: int = 500) -> int:
    """Write every doc that is missing or behind its entity; returns how many were written."""
    written = 0
    for name, entity_type in registry.entities.items():
        if not entity_type.held:
            continue  # no device keeps it: no doc to serve
        model = entity_type.model
        behind = list(session.scalars(
            select(model.id).outerjoin(SyncDoc, _doc_of(entity_type))
            .where((SyncDoc.version.is_(None)) | (SyncDoc.version != model.version))))
        for start in range(0, len(behind), batch):
            write(session, registry, {(name, entity_id) for entity_id in behind[start:start + batch]})
            written += len(behind[start:start + batch])
    return written
