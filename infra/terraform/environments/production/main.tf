# The shop platform's production environment. Apply in two phases from a runner inside the VPC
# (see infra/terraform/README.md): the data stores first, then everything (the kafka and
# postgresql providers talk to the brokers and the database directly).

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]
  default_tags {
    tags = { project = "shop", environment = "production", managed-by = "terraform" }
  }
}

# CloudFront's certificate and WAF live in us-east-1.
provider "aws" {
  alias               = "us_east_1"
  region              = "us-east-1"
  allowed_account_ids = [var.account_id]
}

data "aws_secretsmanager_secret_version" "postgres_master" {
  secret_id = module.platform.postgres_master_secret_arn
}

provider "postgresql" {
  host      = module.platform.postgres_address
  port      = 5432
  database  = "postgres"
  username  = jsondecode(data.aws_secretsmanager_secret_version.postgres_master.secret_string)["username"]
  password  = jsondecode(data.aws_secretsmanager_secret_version.postgres_master.secret_string)["password"]
  sslmode   = "require"
  superuser = false
}

provider "kafka" {
  bootstrap_servers = split(",", module.platform.kafka_admin_bootstrap_brokers)
  tls_enabled       = true
  sasl_mechanism    = "aws-iam"
  sasl_aws_region   = var.region
}

module "platform" {
  source    = "../../modules/platform"
  providers = { aws = aws, aws.us_east_1 = aws.us_east_1, kafka = kafka, postgresql = postgresql }

  environment                       = "production"
  vpc_cidr                          = var.vpc_cidr
  availability_zones                = var.availability_zones
  single_nat_gateway                = var.single_nat_gateway
  kubernetes_version                = var.kubernetes_version
  node_instance_types               = var.node_instance_types
  node_min                          = var.node_min
  node_max                          = var.node_max
  postgres_instance_class           = var.postgres_instance_class
  redis_node_type                   = var.redis_node_type
  redis_nodes                       = var.redis_nodes
  kafka_broker_instance_type        = var.kafka_broker_instance_type
  kafka_topics                      = var.kafka_topics
  documentdb_instance_class         = var.documentdb_instance_class
  documentdb_instances              = var.documentdb_instances
  deletion_protection               = var.deletion_protection
  images_domain_name                = var.images_domain_name
  images_certificate_arn            = var.images_certificate_arn
  us_east_1_kms_key_arn             = var.us_east_1_kms_key_arn
  github_repository                 = var.github_repository
  create_github_oidc_provider       = var.create_github_oidc_provider
  existing_github_oidc_provider_arn = var.existing_github_oidc_provider_arn
}
