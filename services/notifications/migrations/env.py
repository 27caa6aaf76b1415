from notifications_service.config import NotificationsSettings
from notifications_service.models import Base
from shopkit.migrations import run_migrations

run_migrations(Base.metadata, NotificationsSettings().database_url)
