variable "name" {
  description = "Role name prefix, e.g. shop-production."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows deploy."
  type        = string
}

variable "github_environments" {
  description = "GitHub environments allowed to assume the role (staging also lets the production promotion job read the staging images it copies)."
  type        = list(string)
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (only one may exist per account)."
  type        = bool
  default     = true
}

variable "existing_oidc_provider_arn" {
  description = "The account's GitHub OIDC provider when create_oidc_provider is false."
  type        = string
  default     = ""
}

variable "repository_arns" {
  description = "ECR repositories the pipeline may push to."
  type        = list(string)
}

variable "cluster_name" {
  description = "EKS cluster the pipeline deploys to."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of that cluster."
  type        = string
}

variable "namespace" {
  description = "The only namespace the pipeline may change."
  type        = string
  default     = "shop"
}

variable "kms_key_arn" {
  description = "Key encrypting the ECR repositories."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
