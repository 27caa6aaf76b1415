output "secret_arns" {
  description = "Per service, the ARNs of its entries (own and external)."
  value = {
    for name, secret in aws_secretsmanager_secret.service :
    name => compact([secret.arn, try(aws_secretsmanager_secret.external[name].arn, "")])
  }
}
