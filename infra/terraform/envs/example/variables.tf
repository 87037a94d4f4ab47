variable "project" {
  description = "Project short name, first part of every name."
  type        = string
  default     = "phmx"
}

variable "environment" {
  description = "Environment name (dev, test, prod), second part of every name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lowercase letters or digits."
  }
}

variable "account_id" {
  description = "AWS account the environment is deployed to (the provider refuses any other)."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-west-2"
}

variable "vpc_cidr" {
  description = "CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "private_subnets" {
  description = "Private subnets: availability zone => CIDR (two or more)."
  type        = map(string)
}

variable "ui_access_cidrs" {
  description = "Operator networks (VPN) that may reach the private Airflow web server."
  type        = list(string)
  default     = []
}

variable "kms_admin_arns" {
  description = "Roles that administer the KMS keys (cannot use them)."
  type        = list(string)
  default     = []
}

variable "submitters" {
  description = "Submitters: id => { trusted_principal_arns, external_id }. One role and one landing/outbox prefix each."
  type = map(object({
    trusted_principal_arns = list(string)
    external_id            = optional(string)
  }))
}

variable "recipients" {
  description = "Recipients (LHJs, plans): id => { trusted_principal_arns, external_id }. One role and one publish prefix each."
  type = map(object({
    trusted_principal_arns = list(string)
    external_id            = optional(string)
  }))
}

variable "auditor_trusted_principal_arns" {
  description = "Principals that may assume the auditor role (with MFA)."
  type        = list(string)
}

variable "ledger_retention_days" {
  description = "Object Lock COMPLIANCE retention of ledger objects, in days (cannot be shortened once written)."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of access logs, CloudTrail files and flow logs in the log bucket, in days."
  type        = number
  default     = 2557
}

variable "landing_expiration_days" {
  description = "Expiry of submitted files in landing, in days (null keeps them)."
  type        = number
  default     = null
}

variable "force_destroy" {
  description = "Let terraform destroy empty the non-ledger buckets (dev only)."
  type        = bool
  default     = false
}

variable "airflow_version" {
  description = "MWAA Airflow version."
  type        = string
  default     = "3.0.6"
}

variable "mwaa_environment_class" {
  description = "MWAA environment class."
  type        = string
  default     = "mw1.small"
}

variable "mwaa_max_workers" {
  description = "MWAA maximum workers."
  type        = number
  default     = 5
}

variable "emr_release_label" {
  description = "EMR Serverless release (Spark 3.5 + Delta 3 on emr-7.x)."
  type        = string
  default     = "emr-7.9.0"
}

variable "emr_max_cpu" {
  description = "EMR Serverless maximum vCPU."
  type        = string
  default     = "64 vCPU"
}

variable "emr_max_memory" {
  description = "EMR Serverless maximum memory."
  type        = string
  default     = "256 GB"
}

variable "emr_image_uri" {
  description = "Optional custom EMR Serverless image with phmx installed."
  type        = string
  default     = null
}
