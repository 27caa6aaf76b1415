output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "image_registry" {
  description = "Chart value global.imageRegistry."
  value       = module.ecr.registry
}

output "kafka_bootstrap_brokers" {
  description = "Chart value config.SHOP_KAFKA_BOOTSTRAP."
  value       = module.msk.bootstrap_brokers
}

output "store_cidrs" {
  description = "Chart value networkPolicy.storeCidrs."
  value       = module.vpc.data_subnet_cidrs
}

output "service_account_role_arns" {
  description = "Chart values services.<name>.serviceAccountRoleArn."
  value       = module.irsa.role_arns
}

output "deploy_role_arn" {
  description = "GitHub environment secret AWS_DEPLOY_ROLE_ARN."
  value       = module.ci.deploy_role_arn
}

output "images_bucket" {
  description = "Bucket of the product images."
  value       = module.images.bucket_name
}

output "images_cdn_domain" {
  description = "CloudFront domain to point images_domain_name at."
  value       = module.images.cdn_domain_name
}

output "postgres_address" {
  description = "RDS host (terraform's postgresql provider and the services' URLs)."
  value       = module.rds.address
}

output "postgres_master_secret_arn" {
  description = "RDS-managed master credentials."
  value       = module.rds.master_user_secret_arn
}

output "kafka_admin_bootstrap_brokers" {
  description = "IAM-auth brokers for terraform's kafka provider."
  value       = module.msk.bootstrap_brokers_iam
}
