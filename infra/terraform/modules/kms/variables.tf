variable "name_prefix" {
  description = "Prefix for every name, e.g. \"phmx-prod\"."
  type        = string
}

variable "key_admin_arns" {
  description = "IAM principals (roles) allowed to administer the keys (no encrypt/decrypt). Empty: any principal of this account whose IAM policy allows key administration."
  type        = list(string)
  default     = []
}

variable "phi_key_user_arns" {
  description = "Roles allowed to use the PHI key through S3 (pipeline, submitters, recipients)."
  type        = list(string)
}

variable "phi_key_direct_user_arns" {
  description = "Roles allowed to call KMS directly with the PHI key (envelope encryption of direct identifiers, SQS for MWAA): the pipeline roles only."
  type        = list(string)
}

variable "audit_key_user_arns" {
  description = "Roles allowed to use the ledger/audit key through S3 (pipeline writes the ledger, auditor reads it)."
  type        = list(string)
}

variable "audit_key_trail_reader_arns" {
  description = "Roles allowed to decrypt CloudTrail log files (the auditor)."
  type        = list(string)
}

variable "cloudtrail_name" {
  description = "Name of the CloudTrail trail allowed to encrypt with the audit key."
  type        = string
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled key deletion takes effect (7-30)."
  type        = number
  default     = 30
}
