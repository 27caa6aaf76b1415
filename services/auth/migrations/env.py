from auth_service.config import AuthSettings
from auth_service.models import Base
from shopkit.migrations import run_migrations

run_migrations(Base.metadata, AuthSettings().database_url)
