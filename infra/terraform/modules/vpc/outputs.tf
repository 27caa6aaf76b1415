output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's CIDR block."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets (load balancers, NAT)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (EKS nodes and pods)."
  value       = aws_subnet.private[*].id
}

output "data_subnet_ids" {
  description = "Data subnets (managed stores)."
  value       = aws_subnet.data[*].id
}

output "data_subnet_cidrs" {
  description = "Data subnets' CIDRs: the chart's networkPolicy.storeCidrs."
  value       = aws_subnet.data[*].cidr_block
}
