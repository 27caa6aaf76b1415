variable "name" {
  description = "Cluster name, e.g. shop-production."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets, one broker per zone."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "Security group allowed to connect (the EKS cluster's)."
  type        = string
}

variable "kms_key_arn" {
  description = "Key for broker storage, logs and the SCRAM secrets."
  type        = string
}

variable "kafka_version" {
  description = "MSK Kafka version (KRaft)."
  type        = string
  default     = "3.9.x"
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "broker_storage_gib" {
  description = "EBS storage per broker."
  type        = number
  default     = 500
}

variable "partitions" {
  description = "Partitions per event topic: contracts.topics.PARTITIONS, and the consumers' replica ceiling in the chart."
  type        = number
  default     = 6
}

variable "retention_hours" {
  description = "Event retention on the topics."
  type        = number
  default     = 168
}

variable "topics" {
  description = "Event topics, one per producing context (contracts.topics.ALL)."
  type        = list(string)
}

variable "client_names" {
  description = "Services that get a SCRAM identity and ACLs (each writes `<name>.events`)."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Retention of the broker logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
