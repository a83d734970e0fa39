"""Customer links: a signed, expiring page address through which a recipient agrees a delivery window."""
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.ids import new_id
from server.models.types import JSONText


class CustomerLink(db.Model):
    """One link issued for a task; the token in its URL is signed, only a hash of its nonce is stored."""

    __tablename__ = "customer_links"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("l"))
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    nonce_hash: Mapped[str] = mapped_column(String(64))
    # The alternative windows offered: [{"start": iso, "end": iso}, ...] in UTC.
    slots: Mapped[list] = mapped_column(JSONText)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))  # None: the demo seed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
