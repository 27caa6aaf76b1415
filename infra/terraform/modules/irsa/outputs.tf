output "role_arns" {
  description = "Role ARN per component: the chart's services.<name>.serviceAccountRoleArn."
  value       = { for name, role in aws_iam_role.this : name => role.arn }
}
