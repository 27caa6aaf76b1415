# One environment of the shop platform on AWS, composed from the modules beside this one.
# environments/<name>/ instantiate it with their own sizes, CIDRs and accounts.

terraform {
  required_providers {
    aws = {
      source                = "hashicorp/aws"
      configuration_aliases = [aws.us_east_1]
    }
    kafka = {
      source = "Mongey/kafka"
    }
    postgresql = {
      source = "cyrilgdn/postgresql"
    }
    random = {
      source = "hashicorp/random"
    }
  }
}

data "aws_region" "current" {}

locals {
  name = "shop-${var.environment}"
  tags = merge(var.tags, { project = "shop", environment = var.environment })

  # The platform's components (shopkit.settings.SERVICE_PORTS) and their stores.
  postgres_services = ["auth", "users", "inventory", "orders", "payments", "shipping", "notifications"]
  kafka_clients     = concat(local.postgres_services, ["catalog"])
  components        = concat(["gateway", "catalog"], local.postgres_services)

  # Third-party credentials, filled by an operator in shop/<env>/<service>/external.
  external_secret_services = ["payments", "shipping", "notifications"]

  quote_signing_services = ["orders", "shipping"]

  kafka_settings = {
    for name in local.kafka_clients : name => {
      SHOP_KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
      SHOP_KAFKA_SASL_MECHANISM    = "SCRAM-SHA-512"
      SHOP_KAFKA_SASL_USERNAME     = name
      SHOP_KAFKA_SASL_PASSWORD     = module.msk.scram_passwords[name]
    }
  }

  service_secrets = {
    for name in local.components : name => merge(
      { SHOP_REDIS_URL = module.elasticache.url },
      contains(local.postgres_services, name) ? {
        "${upper(name)}_DATABASE_URL" = "postgresql+asyncpg://${name}:${random_password.database[name].result}@${module.rds.address}:${module.rds.port}/${name}"
      } : {},
      name == "catalog" ? { CATALOG_MONGO_URL = module.documentdb.url } : {},
      lookup(local.kafka_settings, name, {}),
      contains(local.quote_signing_services, name) ? { SHOP_QUOTE_SIGNING_SECRET = random_password.quote_signing.result } : {},
      name == "auth" ? { AUTH_SECRET_KEY = random_password.auth_secret_key.result } : {},
    )
  }
}

module "kms" {
  source = "../kms"
  name   = local.name
  tags   = local.tags
}

module "vpc" {
  source             = "../vpc"
  name               = local.name
  cidr               = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = module.kms.key_arn
  tags               = local.tags
}

module "eks" {
  source              = "../eks"
  name                = local.name
  kubernetes_version  = var.kubernetes_version
  vpc_id              = module.vpc.vpc_id
  vpc_cidr            = module.vpc.vpc_cidr
  subnet_ids          = module.vpc.private_subnet_ids
  kms_key_arn         = module.kms.key_arn
  node_instance_types = var.node_instance_types
  node_min            = var.node_min
  node_max            = var.node_max
  tags                = local.tags
}

module "rds" {
  source                   = "../rds"
  name                     = local.name
  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.data_subnet_ids
  client_security_group_id = module.eks.cluster_security_group_id
  kms_key_arn              = module.kms.key_arn
  instance_class           = var.postgres_instance_class
  deletion_protection      = var.deletion_protection
  tags                     = local.tags
}

module "elasticache" {
  source                   = "../elasticache"
  name                     = local.name
  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.data_subnet_ids
  client_security_group_id = module.eks.cluster_security_group_id
  kms_key_arn              = module.kms.key_arn
  node_type                = var.redis_node_type
  nodes                    = var.redis_nodes
  tags                     = local.tags
}

module "msk" {
  source                   = "../msk"
  name                     = local.name
  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.data_subnet_ids
  client_security_group_id = module.eks.cluster_security_group_id
  kms_key_arn              = module.kms.key_arn
  broker_instance_type     = var.kafka_broker_instance_type
  partitions               = var.kafka_partitions
  topics                   = var.kafka_topics
  client_names             = local.kafka_clients
  tags                     = local.tags
}

module "documentdb" {
  source                   = "../documentdb"
  name                     = "${local.name}-catalog"
  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.data_subnet_ids
  client_security_group_id = module.eks.cluster_security_group_id
  kms_key_arn              = module.kms.key_arn
  instance_class           = var.documentdb_instance_class
  instances                = var.documentdb_instances
  deletion_protection      = var.deletion_protection
  tags                     = local.tags
}

module "images" {
  source              = "../images"
  providers           = { aws = aws, aws.us_east_1 = aws.us_east_1 }
  name                = local.name
  domain_name         = var.images_domain_name
  certificate_arn     = var.images_certificate_arn
  kms_key_arn         = module.kms.key_arn
  waf_log_kms_key_arn = var.us_east_1_kms_key_arn
  tags                = local.tags
}

module "ecr" {
  source      = "../ecr"
  components  = concat(local.components, ["cli"])
  kms_key_arn = module.kms.key_arn
  tags        = local.tags
}

# ---------------------------------------------------------------- per-service databases

resource "random_password" "database" {
  for_each = toset(local.postgres_services)
  length   = 40
  special  = false
}

resource "random_password" "auth_secret_key" {
  length  = 64
  special = false
}

resource "random_password" "quote_signing" {
  length  = 64
  special = false
}

# One login role and one database per service; PUBLIC loses CONNECT, so a service's
# credentials open its own database only (database per service, ARCHITECTURE.md).
resource "postgresql_role" "service" {
  for_each = toset(local.postgres_services)
  name     = each.key
  login    = true
  password = random_password.database[each.key].result
}

resource "postgresql_database" "service" {
  for_each = toset(local.postgres_services)
  name     = each.key
  owner    = postgresql_role.service[each.key].name
}

resource "postgresql_grant" "revoke_public_connect" {
  for_each    = toset(local.postgres_services)
  database    = postgresql_database.service[each.key].name
  role        = "public"
  object_type = "database"
  privileges  = []
}

# ---------------------------------------------------------------- secrets and identities

module "secrets" {
  source                   = "../secrets"
  prefix                   = "shop/${var.environment}"
  services                 = local.service_secrets
  external_secret_services = local.external_secret_services
  kms_key_arn              = module.kms.key_arn
  tags                     = local.tags
}

module "irsa" {
  source            = "../irsa"
  name              = local.name
  namespace         = var.namespace
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  region            = data.aws_region.current.region
  kms_key_arn       = module.kms.key_arn
  roles = {
    for name in local.components : name => {
      # The chart names service accounts <release>-<component>; the release is `shop`.
      service_account = "shop-${name}"
      secret_arns     = module.secrets.secret_arns[name]
      extra_statements = name == "catalog" ? [{
        sid       = "ProductImages"
        actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        resources = ["${module.images.bucket_arn}/*"]
      }] : []
    }
  }
  tags = local.tags
}

module "ci" {
  source                     = "../ci"
  name                       = local.name
  github_repository          = var.github_repository
  github_environments        = var.environment == "staging" ? ["staging", "production"] : [var.environment]
  create_oidc_provider       = var.create_github_oidc_provider
  existing_oidc_provider_arn = var.existing_github_oidc_provider_arn
  repository_arns            = module.ecr.repository_arns
  cluster_name               = module.eks.cluster_name
  cluster_arn                = module.eks.cluster_arn
  namespace                  = var.namespace
  kms_key_arn                = module.kms.key_arn
  tags                       = local.tags
}
