variable "account_id" {
  description = "AWS account of this environment (the provider refuses any other)."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "sa-east-1"
}

variable "vpc_cidr" {
  description = "The environment's /16."
  type        = string
}

variable "availability_zones" {
  description = "Three availability zones of the region."
  type        = list(string)
  default     = ["sa-east-1a", "sa-east-1b", "sa-east-1c"]
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per zone."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.34"
}

variable "node_instance_types" {
  description = "EKS node instance types."
  type        = list(string)
  default     = ["m7i.large"]
}

variable "node_min" {
  description = "Minimum EKS nodes."
  type        = number
  default     = 3
}

variable "node_max" {
  description = "Maximum EKS nodes."
  type        = number
  default     = 9
}

variable "postgres_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.m7g.large"
}

variable "redis_nodes" {
  description = "ElastiCache nodes (primary + replicas)."
  type        = number
  default     = 3
}

variable "kafka_broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "kafka_topics" {
  description = "Event topics (contracts.topics.ALL; a test keeps the two equal)."
  type        = list(string)
}

variable "documentdb_instance_class" {
  description = "DocumentDB instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "documentdb_instances" {
  description = "DocumentDB instances."
  type        = number
  default     = 3
}

variable "deletion_protection" {
  description = "Protect the databases from deletion."
  type        = bool
  default     = true
}

variable "images_domain_name" {
  description = "Host name of the product image CDN."
  type        = string
}

variable "images_certificate_arn" {
  description = "ACM certificate (us-east-1) for images_domain_name."
  type        = string
}

variable "us_east_1_kms_key_arn" {
  description = "Customer-managed key in us-east-1 for the CDN's WAF logs."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the repository whose workflows deploy here."
  type        = string
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (one per account)."
  type        = bool
  default     = true
}

variable "existing_github_oidc_provider_arn" {
  description = "Existing GitHub OIDC provider when create_github_oidc_provider is false."
  type        = string
  default     = ""
}
