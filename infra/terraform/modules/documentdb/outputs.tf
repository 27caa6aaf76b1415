output "endpoint" {
  description = "Cluster (writer) endpoint."
  value       = aws_docdb_cluster.this.endpoint
}

output "url" {
  description = "CATALOG_MONGO_URL for the catalog (contains the password)."
  value       = "mongodb://catalog_admin:${random_password.master.result}@${aws_docdb_cluster.this.endpoint}:27017/?tls=true&tlsCAFile=/etc/shop/ca/global-bundle.pem&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false"
  sensitive   = true
}
