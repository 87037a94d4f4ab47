# Buckets (one per zone) and the access-log bucket.
#   landing    <submitter>/<feed>/...      submitters put, pipeline reads
#   outbox     <submitter>/...             receipts: pipeline writes, submitters read their own prefix
#   lakehouse  bronze/ silver/ gold/       pipeline only
#   publish    <recipient>/<feed>/<period>/ pipeline writes, recipients read their own prefix
#   ledger     ledger/                     pipeline appends, auditor reads; Object Lock COMPLIANCE
#   artifacts  dags/ jobs/ emr-logs/ startup/  MWAA source bucket, Spark job code, EMR logs
#   logs       s3-access/ cloudtrail/ vpc-flow-logs/  (SSE-S3: S3 server access logging cannot target SSE-KMS buckets)

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  trail_arn  = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${var.cloudtrail_name}"

  landing_name   = "${var.name_prefix}-landing-${local.account_id}"
  lakehouse_name = "${var.name_prefix}-lakehouse-${local.account_id}"
  outbox_name    = "${var.name_prefix}-outbox-${local.account_id}"
  publish_name   = "${var.name_prefix}-publish-${local.account_id}"
  ledger_name    = "${var.name_prefix}-ledger-${local.account_id}"
  artifacts_name = "${var.name_prefix}-artifacts-${local.account_id}"
  logs_name      = "${var.name_prefix}-logs-${local.account_id}"
}

module "landing" {
  source                             = "../s3_bucket"
  bucket_name                        = local.landing_name
  kms_key_arn                        = var.phi_kms_key_arn
  access_log_bucket                  = aws_s3_bucket.logs.id
  access_log_prefix                  = "s3-access/landing/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  current_version_expiration_days    = var.landing_expiration_days
  force_destroy                      = var.force_destroy
  tags                               = merge(var.tags, { zone = "landing", data-class = "phi" })
}

module "lakehouse" {
  source                             = "../s3_bucket"
  bucket_name                        = local.lakehouse_name
  kms_key_arn                        = var.phi_kms_key_arn
  access_log_bucket                  = aws_s3_bucket.logs.id
  access_log_prefix                  = "s3-access/lakehouse/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  force_destroy                      = var.force_destroy
  tags                               = merge(var.tags, { zone = "lakehouse", data-class = "phi" })
}

module "outbox" {
  source                             = "../s3_bucket"
  bucket_name                        = local.outbox_name
  kms_key_arn                        = var.phi_kms_key_arn
  access_log_bucket                  = aws_s3_bucket.logs.id
  access_log_prefix                  = "s3-access/outbox/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  force_destroy                      = var.force_destroy
  tags                               = merge(var.tags, { zone = "outbox", data-class = "receipts" })
}

module "publish" {
  source                             = "../s3_bucket"
  bucket_name                        = local.publish_name
  kms_key_arn                        = var.phi_kms_key_arn
  access_log_bucket                  = aws_s3_bucket.logs.id
  access_log_prefix                  = "s3-access/publish/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  force_destroy                      = var.force_destroy
  tags                               = merge(var.tags, { zone = "publish", data-class = "phi" })
}

module "ledger" {
  source                             = "../s3_bucket"
  bucket_name                        = local.ledger_name
  kms_key_arn                        = var.audit_kms_key_arn
  access_log_bucket                  = aws_s3_bucket.logs.id
  access_log_prefix                  = "s3-access/ledger/"
  object_lock_retention_days         = var.ledger_retention_days
  noncurrent_version_expiration_days = var.ledger_retention_days + 1
  force_destroy                      = false
  tags                               = merge(var.tags, { zone = "ledger", data-class = "audit" })
}

module "artifacts" {
  source                             = "../s3_bucket"
  bucket_name                        = local.artifacts_name
  kms_key_arn                        = var.phi_kms_key_arn
  access_log_bucket                  = aws_s3_bucket.logs.id
  access_log_prefix                  = "s3-access/artifacts/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  force_destroy                      = var.force_destroy
  tags                               = merge(var.tags, { zone = "artifacts", data-class = "code" })
}

# ---------------------------------------------------------------- access-log bucket
resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log target bucket; logging it into itself would loop. Reads of it are recorded by CloudTrail data events.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery decision taken per deployment; not part of the base module.
  #checkov:skip=CKV_AWS_145:S3 server access logging can only deliver to a bucket whose default encryption is SSE-S3; CloudTrail files in it are SSE-KMS with the audit key.
  bucket        = local.logs_name
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { zone = "logs", data-class = "audit" })
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

resource "aws_s3_bucket_notification" "logs" {
  bucket      = aws_s3_bucket.logs.id
  eventbridge = true
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyTlsOlderThan12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }

  statement {
    sid       = "DenyLogDeletion"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogDelivery"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3-access/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:s3:::${var.name_prefix}-*-${local.account_id}"]
    }
  }

  statement {
    sid       = "CloudTrailAclCheck"
    effect    = "Allow"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.logs.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid       = "CloudTrailWrite"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/cloudtrail/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid       = "FlowLogsAclCheck"
    effect    = "Allow"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.logs.arn]
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "FlowLogsWrite"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/vpc-flow-logs/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket     = aws_s3_bucket.logs.id
  policy     = data.aws_iam_policy_document.logs.json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}
