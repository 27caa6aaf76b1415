# Amazon MSK: three brokers across the data subnets, TLS everywhere, SASL/SCRAM client
# authentication (one user per service, credentials in Secrets Manager under AmazonMSK_*),
# storage encrypted with the environment key, broker logs in CloudWatch, Prometheus exporters on.
# The broker defaults mirror contracts.topics: 6 partitions, no auto-created topics (the
# consumer runtime creates its `<group>.dlq` topics through the admin API).

resource "aws_security_group" "this" {
  name        = "${var.name}-kafka"
  description = "MSK of ${var.name}: reachable from the EKS cluster only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_cluster" {
  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 9096
  to_port                      = 9096
  description                  = "Kafka SASL/SCRAM over TLS from the EKS cluster"
}

resource "aws_vpc_security_group_ingress_rule" "admin_iam" {
  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 9098
  to_port                      = 9098
  description                  = "Kafka IAM auth for the in-VPC terraform runner (topics and ACLs)"
}

resource "aws_vpc_security_group_ingress_rule" "exporters" {
  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 11001
  to_port                      = 11002
  description                  = "Prometheus JMX and node exporters from the cluster's Prometheus"
}

resource "aws_msk_configuration" "this" {
  name           = "${var.name}-brokers"
  kafka_versions = [var.kafka_version]
  server_properties = join("\n", [
    "auto.create.topics.enable=false",
    "num.partitions=${var.partitions}",
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "unclean.leader.election.enable=false",
    "offsets.topic.replication.factor=3",
    "transaction.state.log.replication.factor=3",
    "transaction.state.log.min.isr=2",
    "log.retention.hours=${var.retention_hours}",
    "allow.everyone.if.no.acl.found=false",
  ])
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/aws/msk/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = 3

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]
    storage_info {
      ebs_storage_info {
        volume_size = var.broker_storage_gib
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  client_authentication {
    unauthenticated = false
    sasl {
      # Services authenticate with SCRAM; terraform's topic/ACL management with IAM.
      scram = true
      iam   = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  enhanced_monitoring = "PER_TOPIC_PER_PARTITION"

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }

  tags = var.tags
}

# One SCRAM identity per service; MSK requires the secret name prefix AmazonMSK_ and a
# customer-managed key.
resource "random_password" "scram" {
  for_each = toset(var.client_names)
  length   = 40
  special  = false
}

resource "aws_secretsmanager_secret" "scram" {
  #checkov:skip=CKV2_AWS_57:MSK reads SCRAM credentials from these entries and has no rotation Lambda; rotate by replacing random_password (terraform apply -replace) and rolling the pods.
  for_each    = toset(var.client_names)
  name        = "AmazonMSK_${var.name}_${each.key}"
  description = "Kafka SASL/SCRAM credentials of ${each.key} on ${var.name}"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "scram" {
  for_each  = toset(var.client_names)
  secret_id = aws_secretsmanager_secret.scram[each.key].id
  secret_string = jsonencode({
    username = each.key
    password = random_password.scram[each.key].result
  })
}

resource "aws_secretsmanager_secret_policy" "scram" {
  for_each   = toset(var.client_names)
  secret_arn = aws_secretsmanager_secret.scram[each.key].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AWSKafkaResourcePolicy"
      Effect    = "Allow"
      Principal = { Service = "kafka.amazonaws.com" }
      Action    = "secretsmanager:getSecretValue"
      Resource  = aws_secretsmanager_secret.scram[each.key].arn
    }]
  })
}

resource "aws_msk_scram_secret_association" "this" {
  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = [for name in var.client_names : aws_secretsmanager_secret.scram[name].arn]
  depends_on      = [aws_secretsmanager_secret_version.scram]
}

# ---------------------------------------------------------------- topics and ACLs
# Managed through the Kafka protocol (provider `kafka`), so `terraform apply` must run where the
# brokers are reachable (a runner inside the VPC); the provider is configured by the caller.

resource "kafka_topic" "events" {
  for_each           = toset(var.topics)
  name               = each.key
  partitions         = var.partitions
  replication_factor = 3
  config = {
    "cleanup.policy"      = "delete"
    "retention.ms"        = tostring(var.retention_hours * 3600 * 1000)
    "min.insync.replicas" = "2"
  }
}

# Every service reads every event topic and writes its own; it owns the consumer groups and
# dead-letter topics under its own name.
resource "kafka_acl" "read_topics" {
  for_each                     = toset(var.client_names)
  resource_name                = "*"
  resource_type                = "Topic"
  resource_pattern_type_filter = "Literal"
  acl_principal                = "User:${each.key}"
  acl_host                     = "*"
  acl_operation                = "Read"
  acl_permission_type          = "Allow"
}

resource "kafka_acl" "write_own_topic" {
  for_each                     = toset(var.client_names)
  resource_name                = "${each.key}.events"
  resource_type                = "Topic"
  resource_pattern_type_filter = "Literal"
  acl_principal                = "User:${each.key}"
  acl_host                     = "*"
  acl_operation                = "Write"
  acl_permission_type          = "Allow"
}

resource "kafka_acl" "own_groups" {
  for_each                     = toset(var.client_names)
  resource_name                = "${each.key}-"
  resource_type                = "Group"
  resource_pattern_type_filter = "Prefixed"
  acl_principal                = "User:${each.key}"
  acl_host                     = "*"
  acl_operation                = "All"
  acl_permission_type          = "Allow"
}

resource "kafka_acl" "own_dead_letters" {
  for_each                     = toset(var.client_names)
  resource_name                = "${each.key}-"
  resource_type                = "Topic"
  resource_pattern_type_filter = "Prefixed"
  acl_principal                = "User:${each.key}"
  acl_host                     = "*"
  acl_operation                = "All"
  acl_permission_type          = "Allow"
}

resource "kafka_acl" "idempotent_write" {
  for_each                     = toset(var.client_names)
  resource_name                = "kafka-cluster"
  resource_type                = "Cluster"
  resource_pattern_type_filter = "Literal"
  acl_principal                = "User:${each.key}"
  acl_host                     = "*"
  acl_operation                = "IdempotentWrite"
  acl_permission_type          = "Allow"
}
