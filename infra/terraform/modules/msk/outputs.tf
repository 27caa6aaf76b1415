output "bootstrap_brokers" {
  description = "SASL/SCRAM TLS bootstrap brokers: the chart's config.SHOP_KAFKA_BOOTSTRAP."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "cluster_arn" {
  description = "MSK cluster ARN."
  value       = aws_msk_cluster.this.arn
}

output "scram_passwords" {
  description = "SCRAM password per service (for the services' own secrets)."
  value       = { for name in var.client_names : name => random_password.scram[name].result }
  sensitive   = true
}

output "bootstrap_brokers_iam" {
  description = "IAM-auth bootstrap brokers (terraform's kafka provider)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}
