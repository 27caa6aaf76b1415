from inventory_service.config import InventorySettings
from inventory_service.models import Base
from shopkit.migrations import run_migrations

run_migrations(Base.metadata, InventorySettings().database_url)
