# Secrets Manager entries the services' Kubernetes Secrets are synced from (External Secrets
# Operator, one SecretStore per service authenticating as the service's own IAM role):
#
#   shop/<env>/<service>           connection settings terraform knows (database URL, Redis URL,
#                                  Kafka credentials, shared signing secrets), as
#                                  {ENV_VARIABLE: value}, exactly the keys the pod reads
#   shop/<env>/<service>/external  third-party credentials (Stripe, e-mail/SMS providers,
#                                  carriers) put there by an operator; terraform creates the entry
#                                  and never reads or overwrites its value
#
# Generated values live in the encrypted remote state only; nothing secret is in this code.

resource "aws_secretsmanager_secret" "service" {
  #checkov:skip=CKV2_AWS_57:The value is derived from credentials terraform owns (database roles, SCRAM users, Redis token); rotation is a terraform apply -replace of those, not a Lambda.
  for_each                = var.services
  name                    = "${var.prefix}/${each.key}"
  description             = "Settings of ${each.key} (${var.prefix}), keys are environment variable names"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "service" {
  for_each      = var.services
  secret_id     = aws_secretsmanager_secret.service[each.key].id
  secret_string = jsonencode(each.value)
}

resource "aws_secretsmanager_secret" "external" {
  #checkov:skip=CKV2_AWS_57:Third-party API keys (Stripe, e-mail/SMS, carriers) are rotated in the provider's console by an operator, who then updates this entry.
  for_each                = toset(var.external_secret_services)
  name                    = "${var.prefix}/${each.key}/external"
  description             = "Third-party credentials of ${each.key} (${var.prefix}), set by an operator"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}
