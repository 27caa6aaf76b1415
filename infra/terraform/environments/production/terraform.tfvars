# Production: one NAT gateway per zone, larger instances, deletion protection. No secrets here.
account_id                 = "222222222222"
region                     = "sa-east-1"
vpc_cidr                   = "10.30.0.0/16"
single_nat_gateway         = false
node_instance_types        = ["m7i.xlarge"]
node_min                   = 3
node_max                   = 12
postgres_instance_class    = "db.m7g.xlarge"
redis_node_type            = "cache.m7g.large"
redis_nodes                = 3
kafka_broker_instance_type = "kafka.m7g.large"
documentdb_instance_class  = "db.r6g.large"
documentdb_instances       = 3
deletion_protection        = true
images_domain_name         = "images.shop.example.com"
images_certificate_arn     = "arn:aws:acm:us-east-1:222222222222:certificate/00000000-0000-0000-0000-000000000002"
us_east_1_kms_key_arn      = "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000002"
github_repository          = "shop-platform/shop"
kafka_topics = [
  "auth.events", "users.events", "catalog.events", "inventory.events",
  "orders.events", "payments.events", "shipping.events", "notifications.events",
]
