variable "name" {
  description = "Name prefix (bucket names derive from it, so it must be globally unique), e.g. shop-production."
  type        = string
}

variable "domain_name" {
  description = "Public host name of the image CDN, e.g. images.shop.example.com."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name, in us-east-1 (CloudFront requirement)."
  type        = string
}

variable "kms_key_arn" {
  description = "Key encrypting the buckets (its policy lets CloudFront decrypt, modules/kms)."
  type        = string
}

variable "waf_log_kms_key_arn" {
  description = "Key in us-east-1 encrypting the WAF log group."
  type        = string
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_All"
}

variable "allowed_countries" {
  description = "ISO country codes allowed to fetch images; empty allows all."
  type        = list(string)
  default     = []
}

variable "requests_per_5_minutes_per_ip" {
  description = "WAF rate limit per client IP."
  type        = number
  default     = 2000
}

variable "log_retention_days" {
  description = "Retention of access and WAF logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
