# Staging: smaller and cheaper, same shape (three zones, Multi-AZ stores). No secrets here.
account_id                 = "111111111111"
region                     = "sa-east-1"
vpc_cidr                   = "10.20.0.0/16"
single_nat_gateway         = true
node_instance_types        = ["m7i.large"]
node_min                   = 3
node_max                   = 5
postgres_instance_class    = "db.t4g.medium"
redis_node_type            = "cache.t4g.small"
redis_nodes                = 2
kafka_broker_instance_type = "kafka.t3.small"
documentdb_instance_class  = "db.t4g.medium"
documentdb_instances       = 2
deletion_protection        = false
images_domain_name         = "images.staging.shop.example.com"
images_certificate_arn     = "arn:aws:acm:us-east-1:111111111111:certificate/00000000-0000-0000-0000-000000000001"
us_east_1_kms_key_arn      = "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000001"
github_repository          = "shop-platform/shop"
kafka_topics = [
  "auth.events", "users.events", "catalog.events", "inventory.events",
  "orders.events", "payments.events", "shipping.events", "notifications.events",
]
