output "arn" {
  description = "MWAA environment ARN."
  value       = aws_mwaa_environment.this.arn
}

output "webserver_url" {
  description = "Private Airflow web server URL (reachable from inside the VPC or ui_access_cidrs)."
  value       = aws_mwaa_environment.this.webserver_url
}

output "startup_script_key" {
  description = "Key of the generated startup script exporting the PHMX_* settings."
  value       = aws_s3_object.startup_script.key
}

output "security_group_id" {
  description = "Security group created for this workload."
  value       = aws_security_group.this.id
}
