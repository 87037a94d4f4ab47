terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70.0, < 7.0.0"
    }
  }

  # State holds ARNs and names (no data): keep it in an encrypted, versioned bucket of the operations
  # account. Partial configuration: terraform init -backend-config=backend-<env>.hcl (see README).
  backend "s3" {}
}

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = {
      project     = "phmx"
      environment = var.environment
      managed-by  = "terraform"
    }
  }
}
