output "registry" {
  description = "Registry host: the chart's global.imageRegistry."
  value       = split("/", values(aws_ecr_repository.this)[0].repository_url)[0]
}

output "repository_arns" {
  description = "Repository ARNs (the CI role may push to these only)."
  value       = [for repository in aws_ecr_repository.this : repository.arn]
}
