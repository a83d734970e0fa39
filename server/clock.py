"""Time helpers: everything stored is timezone-aware UTC."""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import DateTime, event
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(timezone.utc)


def local_zone() -> ZoneInfo:
    """The depot's time zone (FIELDOPS_TIMEZONE), which decides what 'a day' is."""
    return ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai"))


def local_day_start(at: datetime) -> datetime:
    """The UTC instant at which the depot's local day containing `at` began."""
    zone = local_zone()
    local = at.astimezone(zone)
    return datetime.combine(local.date(), time.min, zone).astimezone(timezone.utc)


def local_date(at: datetime) -> date:
    """The depot-local calendar date of an instant."""
    return at.astimezone(local_zone()).date()


def local_minute(at: datetime) -> str:
    """An instant as a person at the depot reads it: "2026-12-07 22:54 (depot time)"."""
    return f"{at.astimezone(local_zone()):%Y-%m-%d %H:%M} (depot time)"


def filed_at(device_time: datetime | None, received_at: datetime) -> datetime:
    """When a field fact is filed (the day a payment or an exception counts on): its device time, never after the
    server received it. A device clock ahead of the server's is wrong, and would file the fact under a day not yet
    begun, which no one looks at and no remittance may be booked on."""
    return received_at if device_time is None else min(device_time, received_at)


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a depot-local day, in UTC."""
    zone = local_zone()
    start = datetime.combine(day, time.min, zone)
    return start.astimezone(timezone.utc), (start + timedelta(days=1)).astimezone(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A DateTime that refuses naive values and always comes back aware in UTC.

    SQLite has no time zone type; storing UTC and re-attaching it on load keeps
    both engines returning the same thing.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Normalise to UTC; store naive UTC on SQLite."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Fieldops stores aware UTC only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect):
        """On SQLite, one step to the text SQLAlchemy's DATETIME stores (`YYYY-MM-DD HH:MM:SS.ffffff`).

        The same text its own processor makes after process_bind_param, without
        a %-format per value: a push binds several datetimes per op.
        """
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value):
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given; Fieldops stores aware UTC only")
            return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
        return process

    def process_result_value(self, value, dialect):
        """Re-attach UTC where the engine dropped it."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _to_utc_on_set(_target, value, _oldvalue, _initiator):
    """An aware datetime assigned to a UTCDateTime attribute is held in UTC, as it will load."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    return value


def hold_utc(registry) -> None:
    """Make every UTCDateTime attribute of the mapped classes hold UTC in memory too.

    Otherwise an object keeps a device's +08:00 until it is reloaded, and the
    same instant dumps as two different strings depending on where it came from.
    """
    for mapper in registry.mappers:
        for prop in mapper.column_attrs:
            if any(isinstance(column.type, UTCDateTime) for column in prop.columns):
                attribute = getattr(mapper.class_, prop.key)
                if not event.contains(attribute, "set", _to_utc_on_set):
                    event.listen(attribute, "set", _to_utc_on_set, retval=True)
