variable "components" {
  description = "Image names without the `shop-` prefix: gateway, the services and cli."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Key encrypting the images."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
