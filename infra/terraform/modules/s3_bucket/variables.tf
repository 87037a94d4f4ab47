variable "bucket_name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key for default SSE-KMS; the bucket policy denies puts that name another key or algorithm."
  type        = string
}

variable "access_log_bucket" {
  description = "Name of the bucket that receives S3 server access logs."
  type        = string
}

variable "access_log_prefix" {
  description = "Key prefix for this bucket's access logs in the log bucket."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions are deleted."
  type        = number
  default     = 90
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which incomplete multipart uploads are aborted."
  type        = number
  default     = 7
}

variable "current_version_expiration_days" {
  description = "Days after which current object versions expire; null keeps them."
  type        = number
  default     = null
}

variable "object_lock_retention_days" {
  description = "When set, the bucket is created with S3 Object Lock and this default retention in COMPLIANCE mode (cannot be shortened or removed by anyone, root included)."
  type        = number
  default     = null
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete a non-empty bucket (never for prod)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
