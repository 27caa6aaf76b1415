variable "name" {
  description = "Name prefix of every resource, e.g. shop-production."
  type        = string
}

variable "cidr" {
  description = "The VPC's /16; subnets are carved as /20 per tier and zone."
  type        = string
}

variable "availability_zones" {
  description = "The three zones to spread over, named explicitly so a new AWS zone never moves subnets."
  type        = list(string)
  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "Give exactly three availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the three zones (cheaper, staging) instead of one per zone."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Key encrypting the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
