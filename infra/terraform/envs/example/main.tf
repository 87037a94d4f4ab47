# Example environment: the whole hub in one account and region. Copy this folder per environment
# or use it with -var-file=dev.tfvars / prod.tfvars and one backend per environment.

locals {
  name_prefix = "${var.project}-${var.environment}"
  trail_name  = "${local.name_prefix}-trail"
  mwaa_name   = "${local.name_prefix}-airflow"
  tags        = { project = var.project, environment = var.environment }

  # The phmx settings (environment variables) this deployment feeds; exported to MWAA by its
  # startup script and shown by the output phmx_settings.
  phmx_settings = {
    PHMX_LANDING_ROOT           = "s3://${module.storage.bucket_names["landing"]}"
    PHMX_LAKEHOUSE_ROOT         = "s3://${module.storage.bucket_names["lakehouse"]}"
    PHMX_OUTBOX_ROOT            = "s3://${module.storage.bucket_names["outbox"]}"
    PHMX_PUBLISH_ROOT           = "s3://${module.storage.bucket_names["publish"]}"
    PHMX_LEDGER_ROOT            = "s3://${module.storage.bucket_names["ledger"]}/ledger"
    PHMX_KMS_KEY_ID             = module.kms.phi_key_arn
    PHMX_RUNNER                 = "emr_serverless"
    PHMX_EMR_APPLICATION_ID     = module.emr.application_id
    PHMX_EMR_EXECUTION_ROLE_ARN = module.iam.pipeline_spark_role_arn
    PHMX_EMR_CODE_URI           = module.emr.code_uri
    PHMX_EMR_LOG_URI            = module.emr.log_uri
    PHMX_KEYS_DIR               = "s3://${module.storage.bucket_names["artifacts"]}/keys"
    PHMX_LEDGER_KMS_KEY_ID      = module.kms.audit_key_arn
  }
}

module "kms" {
  source                      = "../../modules/kms"
  name_prefix                 = local.name_prefix
  key_admin_arns              = var.kms_admin_arns
  phi_key_user_arns           = concat(module.iam.pipeline_role_arns, values(module.iam.submitter_role_arns), values(module.iam.recipient_role_arns))
  phi_key_direct_user_arns    = module.iam.pipeline_role_arns
  audit_key_user_arns         = concat(module.iam.pipeline_role_arns, [module.iam.auditor_role_arn])
  audit_key_trail_reader_arns = [module.iam.auditor_role_arn]
  cloudtrail_name             = local.trail_name
}

module "storage" {
  source                  = "../../modules/storage"
  name_prefix             = local.name_prefix
  phi_kms_key_arn         = module.kms.phi_key_arn
  audit_kms_key_arn       = module.kms.audit_key_arn
  cloudtrail_name         = local.trail_name
  ledger_retention_days   = var.ledger_retention_days
  log_retention_days      = var.log_retention_days
  landing_expiration_days = var.landing_expiration_days
  force_destroy           = var.force_destroy
  tags                    = local.tags
}

module "network" {
  source              = "../../modules/network"
  name_prefix         = local.name_prefix
  vpc_cidr            = var.vpc_cidr
  private_subnets     = var.private_subnets
  flow_log_bucket_arn = module.storage.bucket_arns["logs"]
  tags                = local.tags
}

module "iam" {
  source                         = "../../modules/iam"
  name_prefix                    = local.name_prefix
  bucket_arns                    = module.storage.bucket_arns
  phi_kms_key_arn                = module.kms.phi_key_arn
  audit_kms_key_arn              = module.kms.audit_key_arn
  submitters                     = var.submitters
  recipients                     = var.recipients
  auditor_trusted_principal_arns = var.auditor_trusted_principal_arns
  mwaa_environment_name          = local.mwaa_name
  emr_application_arn            = module.emr.application_arn
}

module "emr" {
  source                = "../../modules/emr_serverless"
  name                  = "${local.name_prefix}-spark"
  release_label         = var.emr_release_label
  max_cpu               = var.emr_max_cpu
  max_memory            = var.emr_max_memory
  image_uri             = var.emr_image_uri
  subnet_ids            = module.network.private_subnet_ids
  vpc_id                = module.network.vpc_id
  vpc_cidr              = var.vpc_cidr
  s3_prefix_list_id     = module.network.s3_prefix_list_id
  artifacts_bucket_name = module.storage.bucket_names["artifacts"]
  tags                  = local.tags
}

module "mwaa" {
  source                = "../../modules/mwaa"
  name                  = local.mwaa_name
  airflow_version       = var.airflow_version
  environment_class     = var.mwaa_environment_class
  max_workers           = var.mwaa_max_workers
  execution_role_arn    = module.iam.pipeline_airflow_role_arn
  source_bucket_arn     = module.storage.bucket_arns["artifacts"]
  source_bucket_name    = module.storage.bucket_names["artifacts"]
  kms_key_arn           = module.kms.phi_key_arn
  subnet_ids            = slice(module.network.private_subnet_ids, 0, 2)
  vpc_id                = module.network.vpc_id
  vpc_cidr              = var.vpc_cidr
  s3_prefix_list_id     = module.network.s3_prefix_list_id
  ui_access_cidrs       = var.ui_access_cidrs
  environment_variables = local.phmx_settings
  tags                  = local.tags
}

module "cloudtrail" {
  source                 = "../../modules/cloudtrail"
  name                   = local.trail_name
  name_prefix            = local.name_prefix
  log_bucket_name        = module.storage.bucket_names["logs"]
  kms_key_arn            = module.kms.audit_key_arn
  data_event_bucket_arns = module.storage.phi_bucket_arns
  tags                   = local.tags
}
