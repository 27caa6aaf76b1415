variable "name" {
  description = "Replication group id, e.g. shop-production."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets (three zones)."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "Security group allowed to connect (the EKS cluster's)."
  type        = string
}

variable "kms_key_arn" {
  description = "Key for data at rest and the slow-log group."
  type        = string
}

variable "engine_version" {
  description = "Redis version."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.m7g.large"
}

variable "nodes" {
  description = "Primary plus replicas, one per zone (at least 2: failover is always on)."
  type        = number
  default     = 3
  validation {
    condition     = var.nodes >= 2
    error_message = "Multi-AZ failover needs a primary and at least one replica."
  }
}

variable "snapshot_retention_days" {
  description = "Daily snapshot retention."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Retention of the slow log."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
