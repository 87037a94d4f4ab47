variable "name_prefix" {
  description = "Prefix for every name, e.g. \"phmx-prod\"."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
}

variable "private_subnets" {
  description = "Private subnets: availability zone => CIDR. MWAA needs two in different zones."
  type        = map(string)
  validation {
    condition     = length(var.private_subnets) >= 2
    error_message = "At least two private subnets in different availability zones are required (MWAA)."
  }
}

variable "interface_endpoint_services" {
  description = "AWS services reached through interface VPC endpoints (short names after com.amazonaws.<region>.)."
  type        = list(string)
  default = [
    "kms",
    "sts",
    "logs",
    "monitoring",
    "sqs",
    "ecr.api",
    "ecr.dkr",
    "emr-serverless",
    "airflow.api",
    "airflow.env",
    "airflow.ops",
  ]
}

variable "flow_log_bucket_arn" {
  description = "ARN of the log bucket that receives VPC flow logs (under vpc-flow-logs/)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
