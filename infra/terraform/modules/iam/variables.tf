variable "name_prefix" {
  description = "Prefix for every role and policy name, e.g. \"phmx-prod\"."
  type        = string
}

variable "bucket_arns" {
  description = "Bucket ARN per zone, from the storage module: landing, lakehouse, outbox, publish, ledger, artifacts, logs."
  type        = map(string)
}

variable "phi_kms_key_arn" {
  description = "ARN of the PHI-zone KMS key."
  type        = string
}

variable "audit_kms_key_arn" {
  description = "ARN of the ledger/audit KMS key."
  type        = string
}

variable "submitters" {
  description = "One role per submitter (plan, county, dental program, registry). Key: submitter id, also its prefix in landing/ and outbox/. trusted_principal_arns: who may assume the role (the submitter's AWS account or role, or the hub's transfer service role); external_id: required on AssumeRole when set."
  type = map(object({
    trusted_principal_arns = list(string)
    external_id            = optional(string)
  }))
  validation {
    condition     = alltrue([for k in keys(var.submitters) : can(regex("^[a-z0-9][a-z0-9_-]{1,38}$", k))])
    error_message = "Submitter ids must match ^[a-z0-9][a-z0-9_-]{1,38}$ (they become S3 prefixes and role names)."
  }
}

variable "recipients" {
  description = "One role per recipient (LHJ or plan). Key: recipient id, also its prefix in publish/. Same fields as submitters."
  type = map(object({
    trusted_principal_arns = list(string)
    external_id            = optional(string)
  }))
  validation {
    condition     = alltrue([for k in keys(var.recipients) : can(regex("^[a-z0-9][a-z0-9_-]{1,38}$", k))])
    error_message = "Recipient ids must match ^[a-z0-9][a-z0-9_-]{1,38}$ (they become S3 prefixes and role names)."
  }
}

variable "auditor_trusted_principal_arns" {
  description = "Principals (people's roles or SSO permission-set roles) that may assume the auditor role; MFA is required."
  type        = list(string)
}

variable "mwaa_environment_name" {
  description = "Name of the MWAA environment whose execution role this module creates."
  type        = string
}

variable "emr_application_arn" {
  description = "ARN of the EMR Serverless application the pipeline may run jobs on."
  type        = string
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary attached to every role."
  type        = string
  default     = null
}

variable "max_session_duration" {
  description = "Maximum session length (seconds) of the submitter, recipient and auditor roles."
  type        = number
  default     = 3600
}
