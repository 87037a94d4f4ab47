variable "name" {
  description = "MWAA environment name."
  type        = string
}

variable "airflow_version" {
  description = "Airflow version offered by MWAA in the region (phmx targets Airflow 3)."
  type        = string
  default     = "3.0.6"
}

variable "environment_class" {
  description = "MWAA environment class (mw1.micro, mw1.small, mw1.medium, mw1.large, ...)."
  type        = string
  default     = "mw1.small"
}

variable "min_workers" {
  description = "Minimum number of Celery workers."
  type        = number
  default     = 1
}

variable "max_workers" {
  description = "Maximum number of Celery workers."
  type        = number
  default     = 5
}

variable "execution_role_arn" {
  description = "MWAA execution role (pipeline_airflow from the iam module)."
  type        = string
}

variable "source_bucket_arn" {
  description = "ARN of the artifacts bucket holding dags/, requirements and the startup script."
  type        = string
}

variable "source_bucket_name" {
  description = "Name of the same bucket (the startup script object is written there)."
  type        = string
}

variable "dag_s3_path" {
  description = "Key prefix of the DAG files in the source bucket."
  type        = string
  default     = "dags/"
}

variable "requirements_s3_path" {
  description = "Key of requirements.txt in the source bucket (null: none)."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "Customer managed key for the environment (the PHI key)."
  type        = string
}

variable "subnet_ids" {
  description = "Two private subnet ids in different availability zones."
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

variable "environment_variables" {
  description = "Environment variables exported to every Airflow component by the startup script (the PHMX_* settings)."
  type        = map(string)
  default     = {}
}

variable "log_level" {
  description = "Log level of every MWAA log type."
  type        = string
  default     = "INFO"
}

variable "weekly_maintenance_window_start" {
  description = "Maintenance window start, DAY:HH:MM in UTC."
  type        = string
  default     = "SUN:10:00"
}

variable "tags" {
  description = "Tags for the environment."
  type        = map(string)
  default     = {}
}

variable "ui_access_cidrs" {
  description = "CIDRs (VPN, bastion network) allowed to reach the private Airflow web server on 443. Never 0.0.0.0/0."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.ui_access_cidrs : c != "0.0.0.0/0" && c != "::/0"])
    error_message = "ui_access_cidrs must not contain 0.0.0.0/0 or ::/0."
  }
}
