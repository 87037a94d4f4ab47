output "pipeline_airflow_role_arn" {
  description = "MWAA execution role ARN."
  value       = aws_iam_role.pipeline_airflow.arn
}

output "pipeline_spark_role_arn" {
  description = "EMR Serverless job runtime role ARN (PHMX_EMR_EXECUTION_ROLE_ARN)."
  value       = aws_iam_role.pipeline_spark.arn
}

output "pipeline_role_arns" {
  description = "Both pipeline role ARNs."
  value       = [aws_iam_role.pipeline_airflow.arn, aws_iam_role.pipeline_spark.arn]
}

output "submitter_role_arns" {
  description = "Role ARN per submitter id."
  value       = { for k, r in aws_iam_role.submitter : k => r.arn }
}

output "recipient_role_arns" {
  description = "Role ARN per recipient id."
  value       = { for k, r in aws_iam_role.recipient : k => r.arn }
}

output "auditor_role_arn" {
  description = "Auditor role ARN."
  value       = aws_iam_role.auditor.arn
}
