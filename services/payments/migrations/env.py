from payments_service.config import PaymentsSettings
from payments_service.models import Base
from shopkit.migrations import run_migrations

run_migrations(Base.metadata, PaymentsSettings().database_url)
