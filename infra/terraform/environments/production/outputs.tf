output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name ...)."
  value       = module.platform.cluster_name
}

output "image_registry" {
  description = "Chart value global.imageRegistry."
  value       = module.platform.image_registry
}

output "kafka_bootstrap_brokers" {
  description = "Chart value config.SHOP_KAFKA_BOOTSTRAP."
  value       = module.platform.kafka_bootstrap_brokers
}

output "store_cidrs" {
  description = "Chart value networkPolicy.storeCidrs."
  value       = module.platform.store_cidrs
}

output "service_account_role_arns" {
  description = "Chart values services.<name>.serviceAccountRoleArn."
  value       = module.platform.service_account_role_arns
}

output "deploy_role_arn" {
  description = "GitHub environment secret AWS_DEPLOY_ROLE_ARN."
  value       = module.platform.deploy_role_arn
}

output "images_cdn_domain" {
  description = "CloudFront domain to point the images host name at."
  value       = module.platform.images_cdn_domain
}
