from shipping_service.config import ShippingSettings
from shipping_service.models import Base
from shopkit.migrations import run_migrations

run_migrations(Base.metadata, ShippingSettings().database_url)
