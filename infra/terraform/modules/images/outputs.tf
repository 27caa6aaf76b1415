output "bucket_name" {
  description = "Images bucket (catalog writes here)."
  value       = aws_s3_bucket.images.id
}

output "bucket_arn" {
  description = "Images bucket ARN (for the catalog's IAM policy)."
  value       = aws_s3_bucket.images.arn
}

output "cdn_domain_name" {
  description = "CloudFront domain to alias domain_name to."
  value       = aws_cloudfront_distribution.this.domain_name
}
