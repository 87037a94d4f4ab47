variable "name" {
  description = "Trail name."
  type        = string
}

variable "name_prefix" {
  description = "Prefix for the log group and role names, e.g. \"phmx-prod\"."
  type        = string
}

variable "log_bucket_name" {
  description = "Log bucket that receives the trail files under cloudtrail/."
  type        = string
}

variable "kms_key_arn" {
  description = "Audit key used to encrypt trail files and the CloudWatch log group."
  type        = string
}

variable "data_event_bucket_arns" {
  description = "Buckets whose object-level reads and writes are recorded (the PHI zones and the ledger)."
  type        = list(string)
}

variable "cloudwatch_retention_days" {
  description = "Retention of the trail's CloudWatch log group."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
