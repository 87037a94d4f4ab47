# Production: real submitters and recipients, statutory retention.
environment = "prod"
account_id  = "999988887777"
region      = "us-west-2"
vpc_cidr    = "10.60.0.0/16"

private_subnets = {
  "us-west-2a" = "10.60.0.0/19"
  "us-west-2b" = "10.60.32.0/19"
  "us-west-2c" = "10.60.64.0/19"
}

ui_access_cidrs = ["10.8.0.0/16"]
kms_admin_arns  = ["arn:aws:iam::999988887777:role/phmx-platform-admin"]

submitters = {
  plan_lacare = {
    trusted_principal_arns = ["arn:aws:iam::444455556666:role/phmx-upload"]
    external_id            = "prod-plan-lacare-3c1d"
  }
  plan_partnership = {
    trusted_principal_arns = ["arn:aws:iam::222233334444:role/phmx-upload"]
    external_id            = "prod-plan-partnership-a77e"
  }
  county_la_bh = {
    trusted_principal_arns = ["arn:aws:iam::555566667777:role/phmx-upload"]
    external_id            = "prod-county-la-bh-5e0f"
  }
  county_sf_bhs = {
    trusted_principal_arns = ["arn:aws:iam::333344445555:role/phmx-upload"]
    external_id            = "prod-county-sf-bhs-19aa"
  }
  dental_medical = {
    trusted_principal_arns = ["arn:aws:iam::999988887777:role/phmx-prod-transfer"]
  }
  registry_cair = {
    trusted_principal_arns = ["arn:aws:iam::888899990000:role/phmx-upload"]
    external_id            = "prod-registry-cair-6b52"
  }
}

recipients = {
  lhj_los_angeles = {
    trusted_principal_arns = ["arn:aws:iam::666677778888:role/phmx-download"]
    external_id            = "prod-lhj-la-8e21"
  }
  lhj_san_francisco = {
    trusted_principal_arns = ["arn:aws:iam::777788889999:role/phmx-download"]
    external_id            = "prod-lhj-sf-47d0"
  }
  lhj_alameda = {
    trusted_principal_arns = ["arn:aws:iam::121212121212:role/phmx-download"]
    external_id            = "prod-lhj-alameda-f3b9"
  }
  plan_lacare = {
    trusted_principal_arns = ["arn:aws:iam::444455556666:role/phmx-download"]
    external_id            = "prod-plan-lacare-feeds-2a6c"
  }
}

auditor_trusted_principal_arns = ["arn:aws:iam::999988887777:role/phmx-prod-auditors"]

# Ledger entries are kept ten years (HIPAA six-year documentation retention, 42 CFR Part 2 and
# accounting-of-disclosures requests, with margin). COMPLIANCE mode: nobody can shorten it.
ledger_retention_days = 3653
log_retention_days    = 2557
force_destroy         = false

mwaa_environment_class = "mw1.medium"
mwaa_max_workers       = 10
emr_max_cpu            = "256 vCPU"
emr_max_memory         = "1024 GB"
