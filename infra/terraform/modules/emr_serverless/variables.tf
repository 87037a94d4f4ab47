variable "name" {
  description = "Application name."
  type        = string
}

variable "release_label" {
  description = "EMR release. emr-7.x ships Spark 3.5 and Delta Lake 3 (delta-spark.jar under /usr/share/aws/delta/lib)."
  type        = string
  default     = "emr-7.9.0"
}

variable "architecture" {
  description = "X86_64 or ARM64."
  type        = string
  default     = "X86_64"
}

variable "max_cpu" {
  description = "Maximum vCPU across all workers, e.g. \"64 vCPU\"."
  type        = string
  default     = "64 vCPU"
}

variable "max_memory" {
  description = "Maximum memory across all workers, e.g. \"256 GB\"."
  type        = string
  default     = "256 GB"
}

variable "max_disk" {
  description = "Maximum disk across all workers, e.g. \"1000 GB\"."
  type        = string
  default     = "1000 GB"
}

variable "idle_timeout_minutes" {
  description = "Stop the application after this many idle minutes."
  type        = number
  default     = 15
}

variable "image_uri" {
  description = "Optional custom image (ECR) with the phmx package installed; null uses the release's image and a packed venv (spark.archives)."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Private subnet ids for the workers."
  type        = list(string)
}

variable "vpc_id" {
  description = "VPC of the security group created here."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (HTTPS egress to the interface endpoints)."
  type        = string
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint (HTTPS egress to S3)."
  type        = string
}

variable "artifacts_bucket_name" {
  description = "Artifacts bucket: job code under jobs/, logs under emr-logs/."
  type        = string
}

variable "tags" {
  description = "Tags for the application."
  type        = map(string)
  default     = {}
}
