output "application_id" {
  description = "EMR Serverless application id (PHMX_EMR_APPLICATION_ID)."
  value       = aws_emrserverless_application.this.id
}

output "application_arn" {
  description = "EMR Serverless application ARN."
  value       = aws_emrserverless_application.this.arn
}

output "release_label" {
  description = "EMR release label of the application."
  value       = aws_emrserverless_application.this.release_label
}

output "spark_submit_parameters" {
  description = "sparkSubmitParameters that enable Delta Lake from the release's own jars."
  value       = local.spark_submit_parameters
}

output "log_uri" {
  description = "S3 URI for job logs (monitoringConfiguration.s3MonitoringConfiguration.logUri)."
  value       = "s3://${var.artifacts_bucket_name}/emr-logs/"
}

output "code_uri" {
  description = "S3 URI under which job entry points and the packed phmx venv are uploaded."
  value       = "s3://${var.artifacts_bucket_name}/jobs/"
}

output "security_group_id" {
  description = "Security group created for this workload."
  value       = aws_security_group.this.id
}
