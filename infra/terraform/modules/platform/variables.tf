variable "environment" {
  description = "staging or production: names every resource (shop-<environment>) and the secrets' prefix."
  type        = string
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the Helm release (service-account trust, CI scope)."
  type        = string
  default     = "shop"
}

variable "vpc_cidr" {
  description = "The environment's /16 (the chart's networkPolicy.storeCidrs are its data subnets)."
  type        = string
}

variable "availability_zones" {
  description = "Three availability zones of the region."
  type        = list(string)
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

variable "kafka_partitions" {
  description = "Partitions per event topic (contracts.topics.PARTITIONS)."
  type        = number
  default     = 6
}

variable "kafka_topics" {
  description = "Event topics, one per producing context (contracts.topics.ALL)."
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

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
