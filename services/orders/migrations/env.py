from orders_service.config import OrdersSettings
from orders_service.models import Base
from shopkit.migrations import run_migrations

run_migrations(Base.metadata, OrdersSettings().database_url)
