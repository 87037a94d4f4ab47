output "arn" {
  description = "ARN of the CloudTrail trail."
  value       = aws_cloudtrail.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group receiving the trail."
  value       = aws_cloudwatch_log_group.trail.name
}

output "sns_topic_arn" {
  description = "SNS topic notified on every trail file delivery."
  value       = aws_sns_topic.trail.arn
}
