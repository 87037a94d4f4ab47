output "name" {
  description = "Bucket name."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
}

output "uri" {
  description = "s3:// URI of the bucket root."
  value       = "s3://${aws_s3_bucket.this.id}"
}
