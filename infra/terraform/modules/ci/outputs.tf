output "deploy_role_arn" {
  description = "Role for the workflow's aws-actions/configure-aws-credentials (secret AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.deploy.arn
}
