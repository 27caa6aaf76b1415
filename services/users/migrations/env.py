from shopkit.migrations import run_migrations
from users_service.config import UsersSettings
from users_service.models import Base

run_migrations(Base.metadata, UsersSettings().database_url)
