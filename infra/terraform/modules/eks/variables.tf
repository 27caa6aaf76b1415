variable "name" {
  description = "Cluster name, e.g. shop-production."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version."
  type        = string
  default     = "1.34"
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (node egress to the stores)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control plane ENIs and the nodes (three zones)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Key for Kubernetes secrets, node volumes and the control plane log group."
  type        = string
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m7i.large"]
}

variable "node_min" {
  description = "Minimum (and initial) number of nodes."
  type        = number
  default     = 3
}

variable "node_max" {
  description = "Maximum number of nodes."
  type        = number
  default     = 9
}

variable "node_disk_gib" {
  description = "Root volume size of each node."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Retention of the control plane logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
