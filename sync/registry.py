"""What the engine can sync: op types (with their rules' entry points), entity types, and the attachment store.

The engine knows ops, seqs and versions. The rules live in server.services;
server.sync_wiring registers them here, so the HTTP API and the op handlers
call the very same functions.
"""
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Literal

import marshmallow as ma
from sqlalchemy import String, bindparam, literal_column, select

# A physical fact recorded in the field is applied even on a stale version
# (and flagged); a wish that dispatch has overruled is only recorded.
OpKind = Literal["fact", "wish"]


@dataclass(frozen=True)
class OpType:
    """One kind of op a handheld may push."""

    name: str
    schema: type[ma.Schema]
    handler: Callable[..., Any]  # handler(ctx=OpContext, obj=entity or None, payload=dict) -> new entity or None
    kind: OpKind
    entity: str = "task"
    attachments: Callable[[dict], list[str]] = field(default=lambda payload: [])
    # A create op makes its entity: entity_id is a UUID the device made and base_version is 0;
    # its handler returns the new object. An entity_id is spent once a create op naming it is applied.
    create: bool = False
    # Payload keys the op log never keeps (a handover PIN): stored as "[redacted]". The replay
    # check still compares the whole op, through its digest.
    secret_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntityType:
    """One kind of entity a device holds offline, and how the engine reaches it.

    The engine builds every query from `model` (which has `id` and `version`)
    and `in_scope`; the handheld's JSON of each entity is kept materialised
    (sync.docs) from `dump`, so a pull reads it instead of loading and dumping.
    """

    name: str
    model: Any
    # in_scope(courier_id, day_start) -> SQL condition on model: in the courier's scope today.
    # day_start is the start of the local day (scopes may keep things until it
    # ends); both arguments may be SQL bind parameters, so statements are built once.
    in_scope: Callable[[Any, Any], Any]
    # dump(objs) -> {id: data}: the entities as the handheld holds them (what a pull sends)
    dump: Callable[[list], dict[str, dict]]
    # load(ids) -> [obj] with what dump needs loaded (for those that exist)
    load: Callable[[list[str]], list]
    # Only entities that ops act on need the rest.
    lock_many: Callable[[list[str]], dict[str, Any]] | None = None  # {id: obj} loaded for update
    # access(obj, courier_id) -> "owner", "former" (held it before), or None (never theirs)
    access: Callable[[Any, str], str | None] | None = None
    dispatch_version: Callable[[Any], int] | None = None  # ops based below this conflict
    flag: Callable[[Any], None] | None = None  # mark for dispatch review after a conflict
    # False for entities a device makes but does not keep (a checklist submission): an op's
    # result still shows them; in_scope should then be false() so a pull never lists them.
    held: bool = True
    # reveal(json_texts) -> json_texts: stored docs as a device gets them, for docs that keep a secret
    # sealed (the database never holds it as issued); a page's docs at once. None: sent as stored.
    reveal: Callable[[list[str]], list[str]] | None = None
    # born(obj) -> when the entity came to exist (a task's creation): no op about it happened before, so an op
    # dated earlier is held to it and flagged (sync.timing). None: the engine knows no such bound.
    born: Callable[[Any], datetime | None] | None = None

    def scoped(self, *columns):
        """select(entity name, *columns) of the entities in a courier's scope today.

        The scope is bound as parameters `courier_id` and `day_start`, so the
        statement can be built once and run for any courier.
        """
        return (select(literal_column(f"'{self.name}'", String).label("entity"), *columns)
                .where(self.in_scope(bindparam("courier_id"), bindparam("day_start"))))


@dataclass(frozen=True)
class AttachmentStore:
    """How the engine asks whether the files an op names are uploaded (the server keeps them)."""

    # present(shas) -> the stored ones among them, held until the transaction ends (the collector
    # cannot delete a file the batch is about to refer to)
    present: Callable[[list[str]], set[str]]
    # hold(values) -> None: hold, in one go, every stored file these JSON values may name (a batch's payloads)
    hold: Callable[[Any], None]


class Registry:
    """The op and entity types a server speaks, and where it keeps the files ops name."""

    def __init__(self) -> None:
        """An empty registry."""
        self.ops: dict[str, OpType] = {}
        self.entities: dict[str, EntityType] = {}
        self.attachments: AttachmentStore | None = None

    def op(self, op_type: OpType) -> None:
        """Register an op type; names are unique."""
        if op_type.name in self.ops:
            raise ValueError(f"op type {op_type.name} registered twice")
        self.ops[op_type.name] = op_type

    def entity(self, entity_type: EntityType) -> None:
        """Register an entity type; names are unique."""
        if entity_type.name in self.entities:
            raise ValueError(f"entity type {entity_type.name} registered twice")
        self.entities[entity_type.name] = entity_type

    def attachment_store(self, store: AttachmentStore) -> None:
        """Register where the files ops name are kept; once."""
        if self.attachments is not None:
            raise ValueError("attachment store registered twice")
        self.attachments = store
