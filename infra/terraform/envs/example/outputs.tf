output "phmx_settings" {
  description = "Environment variables for phmx (also exported to MWAA by its startup script)."
  value       = local.phmx_settings
}

output "bucket_names" {
  description = "Bucket name per zone."
  value       = module.storage.bucket_names
}

output "phi_kms_key_arn" {
  description = "PHI-zone KMS key ARN (PHMX_KMS_KEY_ID)."
  value       = module.kms.phi_key_arn
}

output "audit_kms_key_arn" {
  description = "Ledger/audit KMS key ARN (default encryption of the ledger bucket)."
  value       = module.kms.audit_key_arn
}

output "emr_application_id" {
  description = "EMR Serverless application id (PHMX_EMR_APPLICATION_ID)."
  value       = module.emr.application_id
}

output "emr_execution_role_arn" {
  description = "EMR Serverless job runtime role (PHMX_EMR_EXECUTION_ROLE_ARN)."
  value       = module.iam.pipeline_spark_role_arn
}

output "emr_spark_submit_parameters" {
  description = "sparkSubmitParameters enabling Delta Lake on EMR Serverless."
  value       = module.emr.spark_submit_parameters
}

output "emr_log_uri" {
  description = "S3 URI for EMR Serverless job logs."
  value       = module.emr.log_uri
}

output "emr_code_uri" {
  description = "S3 URI for job entry points and the packed phmx environment."
  value       = module.emr.code_uri
}

output "mwaa_webserver_url" {
  description = "Private Airflow web server URL."
  value       = module.mwaa.webserver_url
}

output "mwaa_execution_role_arn" {
  description = "MWAA execution role ARN."
  value       = module.iam.pipeline_airflow_role_arn
}

output "submitter_role_arns" {
  description = "Role ARN per submitter, to hand to each submitter."
  value       = module.iam.submitter_role_arns
}

output "recipient_role_arns" {
  description = "Role ARN per recipient, to hand to each recipient."
  value       = module.iam.recipient_role_arns
}

output "auditor_role_arn" {
  description = "Auditor role ARN."
  value       = module.iam.auditor_role_arn
}

output "cloudtrail_arn" {
  description = "CloudTrail trail ARN."
  value       = module.cloudtrail.arn
}

output "vpc_id" {
  description = "Id of the private VPC."
  value       = module.network.vpc_id
}
