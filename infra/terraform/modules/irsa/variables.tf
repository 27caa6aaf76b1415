variable "name" {
  description = "Role name prefix, e.g. shop-production."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace the chart is installed in."
  type        = string
  default     = "shop"
}

variable "oidc_provider_arn" {
  description = "The cluster's OIDC provider (modules/eks)."
  type        = string
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer URL (modules/eks)."
  type        = string
}

variable "region" {
  description = "AWS region (KMS via-service condition)."
  type        = string
}

variable "kms_key_arn" {
  description = "Key encrypting the secrets."
  type        = string
}

variable "roles" {
  description = "Per component: its service account name, its secrets, and extra IAM statements."
  type = map(object({
    service_account = string
    secret_arns     = list(string)
    extra_statements = optional(list(object({
      sid       = string
      actions   = list(string)
      resources = list(string)
    })), [])
  }))
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
