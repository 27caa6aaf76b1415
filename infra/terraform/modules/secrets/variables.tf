variable "prefix" {
  description = "Name prefix of the entries, e.g. shop/production."
  type        = string
}

variable "services" {
  description = "Per service, the environment variables its secret holds (name -> value)."
  type        = map(map(string))
  sensitive   = true
}

variable "external_secret_services" {
  description = "Services that also get an operator-filled `external` entry."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Key encrypting the entries."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted entry stays recoverable."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
