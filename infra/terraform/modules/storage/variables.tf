variable "name_prefix" {
  description = "Prefix for every name, e.g. \"phmx-prod\". Bucket names are <name_prefix>-<zone>-<account id>."
  type        = string
}

variable "phi_kms_key_arn" {
  description = "KMS key for the PHI zones and the artifacts bucket."
  type        = string
}

variable "audit_kms_key_arn" {
  description = "KMS key for the ledger bucket."
  type        = string
}

variable "cloudtrail_name" {
  description = "Name of the trail allowed to write to the log bucket."
  type        = string
}

variable "ledger_retention_days" {
  description = "Default Object Lock retention (COMPLIANCE mode) of every ledger object version, in days."
  type        = number
  validation {
    condition     = var.ledger_retention_days >= 1
    error_message = "ledger_retention_days must be at least 1."
  }
}

variable "log_retention_days" {
  description = "Days after which access logs, CloudTrail files and flow logs expire from the log bucket."
  type        = number
  default     = 2557
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent versions expire in the data buckets (landing, lakehouse, outbox, publish, artifacts)."
  type        = number
  default     = 90
}

variable "landing_expiration_days" {
  description = "Days after which submitted files expire from landing (null keeps them; bronze keeps lineage)."
  type        = number
  default     = null
}

variable "force_destroy" {
  description = "Allow terraform destroy to empty non-ledger buckets (dev only). The ledger is never force-destroyed."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every bucket."
  type        = map(string)
  default     = {}
}
