output "vpc_id" {
  description = "Id of the private VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnet ids (one per availability zone)."
  value       = [for s in aws_subnet.private : s.id]
}

output "endpoint_security_group_id" {
  description = "Security group of the interface endpoints."
  value       = aws_security_group.endpoints.id
}

output "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}
