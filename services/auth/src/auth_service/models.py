from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shopkit.db import service_metadata
from shopkit.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = service_metadata()


messaging = messaging_tables(Base.metadata)
