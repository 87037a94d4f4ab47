# Development: small, short retention, synthetic data only.
environment = "dev"
account_id  = "111122223333"
region      = "us-west-2"
vpc_cidr    = "10.40.0.0/16"

private_subnets = {
  "us-west-2a" = "10.40.0.0/20"
  "us-west-2b" = "10.40.16.0/20"
}

ui_access_cidrs = ["10.8.0.0/16"]
kms_admin_arns  = ["arn:aws:iam::111122223333:role/phmx-platform-admin"]

submitters = {
  plan_lacare = {
    trusted_principal_arns = ["arn:aws:iam::444455556666:role/phmx-upload"]
    external_id            = "dev-plan-lacare-7f3a"
  }
  county_la_bh = {
    trusted_principal_arns = ["arn:aws:iam::555566667777:role/phmx-upload"]
    external_id            = "dev-county-la-bh-91c2"
  }
  dental_medical = {
    trusted_principal_arns = ["arn:aws:iam::111122223333:role/phmx-dev-transfer"]
  }
}

recipients = {
  lhj_los_angeles = {
    trusted_principal_arns = ["arn:aws:iam::666677778888:role/phmx-download"]
    external_id            = "dev-lhj-la-2b8d"
  }
  lhj_san_francisco = {
    trusted_principal_arns = ["arn:aws:iam::777788889999:role/phmx-download"]
    external_id            = "dev-lhj-sf-c41e"
  }
  plan_lacare = {
    trusted_principal_arns = ["arn:aws:iam::444455556666:role/phmx-download"]
    external_id            = "dev-plan-lacare-feeds-0d9b"
  }
}

auditor_trusted_principal_arns = ["arn:aws:iam::111122223333:role/phmx-dev-auditors"]

# COMPLIANCE retention cannot be shortened: keep it to one day in dev.
ledger_retention_days   = 1
log_retention_days      = 90
landing_expiration_days = 30
force_destroy           = true

mwaa_environment_class = "mw1.small"
mwaa_max_workers       = 2
emr_max_cpu            = "16 vCPU"
emr_max_memory         = "64 GB"
