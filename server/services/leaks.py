"""Information-leak incidents (信息泄露事件): the register quality staff work, and the leaks the service sees itself.

Who may do what (docs/decisions.md, "Issue 23: information-leak incidents"):
the office (dispatch, quality, admin) reports an incident (`open`); quality
staff and admins read the register, correct it, record whom they told, and
decide: confirmed or dismissed, then a confirmed one resolved. The service
opens one on its own (`review`, source `auto`), once per cause, when a
customer or receipt link is used from more client addresses than
FIELDOPS_LEAK_LINK_MAX_ADDRESSES, or a staff member is handed more rows of
customer data than FIELDOPS_LEAK_EXPORT_MAX_ROWS within
FIELDOPS_LEAK_EXPORT_WINDOW_MINUTES (note_export: every route handing out
customer data in bulk calls it). Every change is audited.
"""
import hashlib
import hmac
import logging
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from schemas.vocab import LEAK_UNDECIDED
from server.auth import SYSTEM, Actor
from server.clock import local_date, local_day_bounds, utcnow
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.extensions import db
from server.models import Courier, LeakExportNote, LeakIncident, LeakLinkUse, LeakNotification, StaffUser
from server.services import events
from server.services.common import audit, newest_first, own_transaction, snapshot

log = logging.getLogger(__name__)

DECIDERS = ("admin", "quality")
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# What each watched page shows of a customer (the kinds a link seen from strangers' addresses may have leaked).
_LINK_DATA = {"customer_link": ["address", "name", "other"],  # masked address, surname, the handover PIN
              "receipt": ["name", "other", "payment"]}  # masked name, the inspection, fees and COD


def _decider(actor: Actor) -> None:
    """Deciding, correcting and notifying are quality's and admins' (checked again for any face but the API)."""
    if actor.role not in DECIDERS:
        raise Forbidden("Only quality staff and admins work leak incidents.", code="leak_step_not_allowed")


def _worked(actor: Actor, incident_id: int) -> LeakIncident:
    """The incident a decider works (locked): never one that names them responsible, whom it would clear (a quality
    officer's own export dismissed by themselves keeps leak_incidents at 0): another decider works it."""
    _decider(actor)
    incident = get(incident_id=incident_id, for_update=True)
    if actor.kind == "staff" and incident.responsible_staff_id == actor.id:
        raise Forbidden(f"Leak incident {incident.id} names you responsible: another quality officer or admin "
                        "works it.", code="leak_own_incident")
    return incident


def _facts(incident: LeakIncident, **more) -> dict:
    """What every leak event says: ids, kinds, counts and times; never a description, note or address."""
    return {"incident_id": incident.id, "status": incident.status, "source": incident.source,
            "cause": (incident.detail or {}).get("cause"), "data_kinds": list(incident.data_kinds),
            "people_affected": incident.people_affected, "discovered_at": events.iso(incident.discovered_at),
            "responsible_staff_id": incident.responsible_staff_id,
            "responsible_courier_id": incident.responsible_courier_id, **more}


def _check_times(*, occurred_at: datetime | None, discovered_at: datetime, now: datetime) -> None:
    """Neither time in the future; an incident is not found before it happened (422 naming the field)."""
    if occurred_at is not None and occurred_at > now:
        raise ValidationFailed("occurred_at is in the future.", fields={"occurred_at": ["Must not be in the future."]})
    if discovered_at > now:
        raise ValidationFailed("discovered_at is in the future.",
                               fields={"discovered_at": ["Must not be in the future."]})
    if occurred_at is not None and discovered_at < occurred_at:
        raise ValidationFailed("discovered_at is before occurred_at.",
                               fields={"discovered_at": ["Must not be before occurred_at."]})


def _check_people(*, responsible_staff_id: str | None, responsible_courier_id: str | None) -> None:
    """The responsible staff member and courier exist (422 naming the field)."""
    if responsible_staff_id is not None and db.session.get(StaffUser, responsible_staff_id) is None:
        raise ValidationFailed("No such staff member.", fields={"responsible_staff_id": ["No such staff member."]})
    if responsible_courier_id is not None and db.session.get(Courier, responsible_courier_id) is None:
        raise ValidationFailed("No such courier.", fields={"responsible_courier_id": ["No such courier."]})


def open_incident(*, actor: Actor, source: str, discovered_at: datetime, data_kinds: list[str], description: str,
                  occurred_at: datetime | None = None, occurred_approximate: bool = False,
                  people_affected: int | None = None, responsible_staff_id: str | None = None,
                  responsible_courier_id: str | None = None) -> LeakIncident:
    """Record an incident the office reports (status open, for quality's decision). Commits."""
    now = utcnow()
    _check_times(occurred_at=occurred_at, discovered_at=discovered_at, now=now)
    _check_people(responsible_staff_id=responsible_staff_id, responsible_courier_id=responsible_courier_id)
    incident = LeakIncident(status="open", source=source, occurred_at=occurred_at,
                            occurred_approximate=occurred_approximate if occurred_at is not None else False,
                            discovered_at=discovered_at, data_kinds=sorted(set(data_kinds)),
                            people_affected=people_affected, description=description,
                            responsible_staff_id=responsible_staff_id, responsible_courier_id=responsible_courier_id,
                            opened_at=now, opened_by=actor.id if actor.kind == "staff" else None)
    db.session.add(incident)
    audit(actor, "leak.open", incident, None)  # flushes: the incident has its id
    events.emit("leak.opened", str(incident.id), _facts(incident))
    db.session.commit()
    return incident


def get(*, incident_id: int, for_update: bool = False) -> LeakIncident:
    """One incident or 404."""
    incident = db.session.get(LeakIncident, incident_id, with_for_update=for_update)
    if incident is None:
        raise NotFound(f"No leak incident {incident_id}.", code="leak_incident_not_found")
    return incident


def get_all(*, status: str | None = None, source: str | None = None, start: date | None = None,
            end: date | None = None, cursor: int | None = None, limit: int = 50) -> dict:
    """Incidents newest first, by status, source, and the depot-local dates they were discovered on."""
    if start is not None and end is not None and start > end:
        raise ValidationFailed("from is after to.", fields={"from": ["Must not be after to."]})
    query = select(LeakIncident)
    if status:
        query = query.where(LeakIncident.status == status)
    if source:
        query = query.where(LeakIncident.source == source)
    if start is not None:
        query = query.where(LeakIncident.discovered_at >= local_day_bounds(start)[0])
    if end is not None:
        query = query.where(LeakIncident.discovered_at < local_day_bounds(end)[1])
    return newest_first(query, LeakIncident.id, cursor=cursor, limit=limit)


def update(*, actor: Actor, incident_id: int, **changes) -> LeakIncident:
    """Correct what the register says (times, data, people, responsibility); a dismissed one stays as decided.
    Commits."""
    incident = _worked(actor, incident_id)
    if incident.status == "dismissed":
        raise Conflict("A dismissed incident is not corrected.", code="leak_wrong_status",
                       extra={"incident_status": incident.status})
    before = snapshot(incident)
    merged = {"occurred_at": incident.occurred_at, "discovered_at": incident.discovered_at, **changes}
    _check_times(occurred_at=merged["occurred_at"], discovered_at=merged["discovered_at"], now=utcnow())
    if incident.resolved_at is not None and incident.resolved_at < merged["discovered_at"]:
        raise ValidationFailed("discovered_at is after the resolution.",
                               fields={"discovered_at": ["Must not be after resolved_at."]})
    _check_people(responsible_staff_id=changes.get("responsible_staff_id"),
                  responsible_courier_id=changes.get("responsible_courier_id"))
    if "data_kinds" in changes:
        changes["data_kinds"] = sorted(set(changes["data_kinds"]))
    for name, value in changes.items():
        setattr(incident, name, value)
    if incident.occurred_at is None:
        incident.occurred_approximate = False
    audit(actor, "leak.update", incident, before)
    db.session.commit()
    return incident


def notify(*, actor: Actor, incident_id: int, audience: str, notified_at: datetime, channel: str,
           note: str | None = None) -> LeakIncident:
    """Record that customers, management, the regulator or the police were told, when and how; each kept. Commits."""
    incident = _worked(actor, incident_id)
    if incident.status == "dismissed":
        raise Conflict("A dismissed incident is not a leak: nobody is told of it.", code="leak_wrong_status",
                       extra={"incident_status": incident.status})
    if notified_at > utcnow():
        raise ValidationFailed("notified_at is in the future.", fields={"notified_at": ["Must not be in the future."]})
    if notified_at < incident.discovered_at:
        raise ValidationFailed("notified_at is before the incident was discovered.",
                               fields={"notified_at": ["Must not be before discovered_at."]})
    notification = LeakNotification(audience=audience, notified_at=notified_at, channel=channel, note=note,
                                    recorded_at=utcnow(), recorded_by=actor.id if actor.kind == "staff" else None)
    incident.notifications.append(notification)
    audit(actor, "leak.notify", notification, None)
    db.session.commit()
    return incident


def _an(word: str) -> str:
    """The word with its indefinite article, capitalised to open a sentence: "An open", "A confirmed"."""
    return f"{'An' if word[0] in 'aeiou' else 'A'} {word}"


def _decide(actor: Actor, incident_id: int, status: str, note: str | None) -> LeakIncident:
    """Confirm or dismiss an incident awaiting a decision; audited, its event emitted. Commits."""
    incident = _worked(actor, incident_id)
    if incident.status not in LEAK_UNDECIDED:
        raise Conflict(f"{_an(incident.status)} incident cannot be {status}.", code="leak_wrong_status",
                       extra={"incident_status": incident.status})
    before = snapshot(incident)
    incident.status, incident.decided_at, incident.decision_note = status, utcnow(), note
    incident.decided_by = actor.id if actor.kind == "staff" else None
    audit(actor, {"confirmed": "leak.confirm", "dismissed": "leak.dismiss"}[status], incident, before)
    events.emit(f"leak.{status}", str(incident.id), _facts(incident, decided_by=incident.decided_by,
                                                           decided_at=events.iso(incident.decided_at)))
    db.session.commit()
    return incident


def confirm(*, actor: Actor, incident_id: int, note: str | None = None) -> LeakIncident:
    """Quality confirms the leak: from now on it counts in leak_incidents."""
    return _decide(actor, incident_id, "confirmed", note)


def dismiss(*, actor: Actor, incident_id: int, note: str) -> LeakIncident:
    """Quality finds no leak (an automatic flag explained, a report mistaken), saying why."""
    return _decide(actor, incident_id, "dismissed", note)


def resolve(*, actor: Actor, incident_id: int, resolution: str, resolved_at: datetime | None = None) -> LeakIncident:
    """A confirmed leak is resolved: when (default now; not in the future, not before its discovery) and how.
    Commits."""
    incident = _worked(actor, incident_id)
    if incident.status != "confirmed":
        raise Conflict(f"{_an(incident.status)} incident cannot be resolved: confirm it first.",
                       code="leak_wrong_status", extra={"incident_status": incident.status})
    now = utcnow()
    resolved_at = resolved_at or now
    if resolved_at > now:
        raise ValidationFailed("resolved_at is in the future.", fields={"resolved_at": ["Must not be in the future."]})
    if resolved_at < incident.discovered_at:
        raise ValidationFailed("resolved_at is before the incident was discovered.",
                               fields={"resolved_at": ["Must not be before discovered_at."]})
    before = snapshot(incident)
    incident.status, incident.resolved_at, incident.resolution = "resolved", resolved_at, resolution
    incident.resolved_by = actor.id if actor.kind == "staff" else None
    audit(actor, "leak.resolve", incident, before)
    events.emit("leak.resolved", str(incident.id), _facts(incident, resolved_at=events.iso(resolved_at),
                                                          resolved_by=incident.resolved_by))
    db.session.commit()
    return incident


# --- what the service sees on its own ---------------------------------------------------------------

def _own_transaction(what: str):
    """A short committed write of its own after a page or list (common.own_transaction): a database that cannot
    write loses the note, logged, and the page or list is served (docs/decisions.md, "Issue 23: information-leak
    incidents")."""
    return own_transaction(f"leak detection: {what}", log)


def address_hash(address: str) -> str:
    """A client address as link uses keep it: an HMAC under the server's secret, so the table names no address."""
    return hmac.new(current_app.config["SECRET_KEY"].encode(), f"leak-link-use:{address}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def _open_auto(*, cause: str, detail: dict, data_kinds: list[str], people_affected: int | None, description: str,
               responsible_staff_id: str | None, now: datetime) -> bool:
    """Open an incident for review once per cause, even from two hosts at once; True if this call did (flushes)."""
    insert = _INSERT[db.session.get_bind().dialect.name]
    incident_id = db.session.execute(insert(LeakIncident.__table__).values(
        status="review", source="auto", cause=cause, occurred_at=None, occurred_approximate=False,
        discovered_at=now, data_kinds=data_kinds, people_affected=people_affected, description=description,
        detail=detail, responsible_staff_id=responsible_staff_id, opened_at=now, opened_by=None,
    ).on_conflict_do_nothing(index_elements=["cause"]).returning(LeakIncident.id)).scalar()
    if incident_id is None:
        return False
    incident = db.session.get(LeakIncident, incident_id)
    audit(SYSTEM, "leak.open", incident, None)
    events.emit("leak.opened", str(incident.id), _facts(incident))
    return True


def note_link_use(*, link_kind: str, link_id: str, address: str | None, task_id: str | None) -> bool:
    """A customer or receipt page was shown to a client address: one upsert of (link, keyed hash of the address);
    only an address new to the link counts the link's addresses, and past FIELDOPS_LEAK_LINK_MAX_ADDRESSES the
    link's incident opens for review (once; again past ten and a hundred times it ...). In a short transaction of its own; True if an incident opened."""
    now = utcnow()
    insert = _INSERT[db.session.get_bind().dialect.name]
    opened = False
    with _own_transaction("link use"):
        new = db.session.execute(insert(LeakLinkUse.__table__).values(
            link_kind=link_kind, link_id=link_id, address_hash=address_hash(address or "unknown"), first_seen=now,
        ).on_conflict_do_nothing().returning(LeakLinkUse.link_id)).scalar()
        seen = new and db.session.scalar(select(func.count()).select_from(LeakLinkUse).where(
            LeakLinkUse.link_kind == link_kind, LeakLinkUse.link_id == link_id))
        limit = current_app.config["LEAK_LINK_MAX_ADDRESSES"]
        if seen and seen > limit:
            # Flagged past the limit, and again past ten times it, a hundred times it, ...: a flag dismissed
            # (the family chat) does not blind detection of the link for ever once it is published.
            level = 0
            while seen > limit * 10 ** (level + 1):
                level += 1
            opened = _open_auto(
                cause=f"link:{link_kind}:{link_id}" + (f":x{10 ** level}" if level else ""), now=now, data_kinds=_LINK_DATA[link_kind], people_affected=1,
                responsible_staff_id=None,
                detail={"cause": "link_addresses", "link_kind": link_kind, "link_id": link_id, "task_id": task_id,
                        "addresses": seen, "limit": limit * 10 ** level},
                description=f"The {link_kind.replace('_', ' ')} of task {task_id} was opened from {seen} different "
                            f"client addresses (more than {limit * 10 ** level}): the link may have been passed on "
                            "or published.")
    return opened


def note_export(*, actor: Actor, what: str, rows: int) -> bool:
    """Customer data handed to a staff member in bulk: noted, and their rows over the rolling window
    FIELDOPS_LEAK_EXPORT_WINDOW_MINUTES added up (pages cannot dodge it); above FIELDOPS_LEAK_EXPORT_MAX_ROWS an
    incident naming them opens for review, once per staff member and depot-local day. In a short transaction of
    its own; True if an incident opened. Every route handing out customer data in bulk calls this."""
    if actor.kind != "staff" or rows <= 0:
        return False
    now = utcnow()
    minutes = current_app.config["LEAK_EXPORT_WINDOW_MINUTES"]
    limit = current_app.config["LEAK_EXPORT_MAX_ROWS"]
    opened = False
    with _own_transaction("export note"):
        db.session.add(LeakExportNote(staff_id=actor.id, what=what, rows=rows, at=now))
        db.session.flush()
        by_what = {name: int(n) for name, n in db.session.execute(
            select(LeakExportNote.what, func.sum(LeakExportNote.rows))
            .where(LeakExportNote.staff_id == actor.id, LeakExportNote.at > now - timedelta(minutes=minutes))
            .group_by(LeakExportNote.what))}
        total = sum(by_what.values())
        if total > limit:
            opened = _open_auto(
                cause=f"export:{actor.id}:{local_date(now).isoformat()}", now=now,
                data_kinds=["address", "name", "phone"], people_affected=None, responsible_staff_id=actor.id,
                detail={"cause": "export_rows", "staff_id": actor.id, "rows": total, "what": dict(sorted(by_what.items())),
                        "window_minutes": minutes, "limit": limit},
                description=f"Staff member {actor.id} was handed {total} rows of customer data within {minutes} "
                            f"minutes (more than {limit}).")
    return opened


def prune(*, now: datetime) -> dict:
    """Link uses older than FIELDOPS_LEAK_LINK_USE_DAYS and export notes older than their window leave (the
    retention job); an incident already opened stays. Flushes."""
    link_cutoff = now - timedelta(days=current_app.config["LEAK_LINK_USE_DAYS"])
    export_cutoff = now - timedelta(minutes=current_app.config["LEAK_EXPORT_WINDOW_MINUTES"])
    uses = db.session.execute(delete(LeakLinkUse).where(LeakLinkUse.first_seen < link_cutoff)).rowcount
    notes = db.session.execute(delete(LeakExportNote).where(LeakExportNote.at < export_cutoff)).rowcount
    return {"link_uses": uses, "export_notes": notes}
