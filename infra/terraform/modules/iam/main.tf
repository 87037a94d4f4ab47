# Roles and their policies. Every policy is an aws_iam_policy_document so tests/infra can evaluate it.
#   pipeline_airflow  MWAA execution role: data policy + MWAA operations + start EMR Serverless jobs
#   pipeline_spark    EMR Serverless job runtime role: data policy + job code / logs in artifacts
#   submitter[<id>]   PutObject on landing/<id>/*, read outbox/<id>/* (its receipts); nothing else
#   recipient[<id>]   read publish/<id>/*; no write
#   auditor           read the ledger and log buckets; no write

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  s3_service = "s3.${local.region}.amazonaws.com"

  landing   = var.bucket_arns["landing"]
  lakehouse = var.bucket_arns["lakehouse"]
  outbox    = var.bucket_arns["outbox"]
  publish   = var.bucket_arns["publish"]
  ledger    = var.bucket_arns["ledger"]
  artifacts = var.bucket_arns["artifacts"]
  logs      = var.bucket_arns["logs"]

  airflow_role_name = "${var.name_prefix}-pipeline-airflow"
  spark_role_name   = "${var.name_prefix}-pipeline-spark"
  spark_role_arn    = "arn:${local.partition}:iam::${local.account_id}:role/${local.spark_role_name}"
}

# ================================================================ pipeline (Airflow + Spark)
data "aws_iam_policy_document" "pipeline_data" {
  statement {
    sid       = "ListZones"
    effect    = "Allow"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"]
    resources = [local.landing, local.lakehouse, local.outbox, local.publish, local.ledger, local.artifacts]
  }

  statement {
    sid    = "ReadWriteDataZones"
    effect = "Allow"
    actions = [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.landing}/*", "${local.lakehouse}/*", "${local.outbox}/*", "${local.publish}/*"]
  }

  statement {
    sid    = "AppendAndReadLedger"
    effect = "Allow"
    actions = [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:GetObjectRetention",
      "s3:GetObjectLegalHold",
      "s3:PutObject",
    ]
    resources = ["${local.ledger}/*"]
  }

  statement {
    sid       = "ReadArtifacts"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.artifacts}/*"]
  }

  statement {
    sid       = "UsePhiKey"
    effect    = "Allow"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
    resources = [var.phi_kms_key_arn]
  }

  statement {
    sid       = "UseAuditKeyForLedgerThroughS3"
    effect    = "Allow"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.audit_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [local.ledger]
    }
  }
}

resource "aws_iam_policy" "pipeline_data" {
  name        = "${var.name_prefix}-pipeline-data"
  description = "Read/write every phmx zone, append to the ledger, use the PHI key."
  policy      = data.aws_iam_policy_document.pipeline_data.json
}

# ---------------------------------------------------------------- Airflow (MWAA execution role)
data "aws_iam_policy_document" "airflow_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "pipeline_airflow" {
  name                 = local.airflow_role_name
  description          = "MWAA execution role for the phmx DAGs."
  assume_role_policy   = data.aws_iam_policy_document.airflow_trust.json
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "pipeline_airflow_data" {
  role       = aws_iam_role.pipeline_airflow.name
  policy_arn = aws_iam_policy.pipeline_data.arn
}

data "aws_iam_policy_document" "airflow_ops" {
  statement {
    sid       = "PublishMetrics"
    effect    = "Allow"
    actions   = ["airflow:PublishMetrics"]
    resources = ["arn:${local.partition}:airflow:${local.region}:${local.account_id}:environment/${var.mwaa_environment_name}"]
  }

  statement {
    sid       = "ReadDagBucketConfig"
    effect    = "Allow"
    actions   = ["s3:GetBucketPublicAccessBlock", "s3:GetBucketLocation", "s3:GetBucketVersioning"]
    resources = [local.artifacts]
  }

  statement {
    sid       = "ReadAccountPublicAccessBlock"
    effect    = "Allow"
    actions   = ["s3:GetAccountPublicAccessBlock"]
    resources = ["*"]
  }

  statement {
    sid    = "AirflowLogs"
    effect = "Allow"
    actions = [
      "logs:CreateLogStream",
      "logs:CreateLogGroup",
      "logs:PutLogEvents",
      "logs:GetLogEvents",
      "logs:GetLogRecord",
      "logs:GetLogGroupFields",
      "logs:GetQueryResults",
    ]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:airflow-${var.mwaa_environment_name}-*"]
  }

  statement {
    sid       = "DescribeOwnLogGroups"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }

  statement {
    sid       = "Metrics"
    effect    = "Allow"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["AmazonMWAA"]
    }
  }

  statement {
    sid    = "CeleryQueues"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = ["arn:${local.partition}:sqs:${local.region}:*:airflow-celery-*"]
  }

  statement {
    sid       = "RunSparkJobs"
    effect    = "Allow"
    actions   = ["emr-serverless:StartJobRun", "emr-serverless:GetApplication", "emr-serverless:StartApplication"]
    resources = [var.emr_application_arn]
  }

  statement {
    sid       = "WatchSparkJobs"
    effect    = "Allow"
    actions   = ["emr-serverless:GetJobRun", "emr-serverless:CancelJobRun", "emr-serverless:GetDashboardForJobRun"]
    resources = ["${var.emr_application_arn}/jobruns/*"]
  }

  statement {
    sid       = "PassSparkRoleToEmrServerless"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [local.spark_role_arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["emr-serverless.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "pipeline_airflow_ops" {
  name   = "mwaa-operations"
  role   = aws_iam_role.pipeline_airflow.id
  policy = data.aws_iam_policy_document.airflow_ops.json
}

# ---------------------------------------------------------------- Spark (EMR Serverless job role)
data "aws_iam_policy_document" "spark_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.emr_application_arn]
    }
  }
}

resource "aws_iam_role" "pipeline_spark" {
  name                 = local.spark_role_name
  description          = "EMR Serverless job runtime role for the phmx Spark jobs."
  assume_role_policy   = data.aws_iam_policy_document.spark_trust.json
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "pipeline_spark_data" {
  role       = aws_iam_role.pipeline_spark.name
  policy_arn = aws_iam_policy.pipeline_data.arn
}

data "aws_iam_policy_document" "spark_logs" {
  statement {
    sid       = "WriteEmrLogs"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${local.artifacts}/emr-logs/*"]
  }
}

resource "aws_iam_role_policy" "pipeline_spark_logs" {
  name   = "emr-logs"
  role   = aws_iam_role.pipeline_spark.id
  policy = data.aws_iam_policy_document.spark_logs.json
}

# ================================================================ submitters
data "aws_iam_policy_document" "submitter_trust" {
  for_each = var.submitters
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = each.value.trusted_principal_arns
    }
    dynamic "condition" {
      for_each = each.value.external_id == null ? [] : [each.value.external_id]
      content {
        test     = "StringEquals"
        variable = "sts:ExternalId"
        values   = [condition.value]
      }
    }
  }
}

data "aws_iam_policy_document" "submitter" {
  for_each = var.submitters

  statement {
    sid       = "PutOwnLandingPrefix"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${local.landing}/${each.key}/*"]
  }

  statement {
    sid       = "ListOwnReceipts"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.outbox]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${each.key}/", "${each.key}/*"]
    }
  }

  statement {
    sid       = "ReadOwnReceipts"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${local.outbox}/${each.key}/*"]
  }

  statement {
    sid       = "EncryptUploadsThroughS3"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.phi_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [local.landing]
    }
  }

  statement {
    sid       = "DecryptReceiptsThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.phi_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [local.outbox]
    }
  }
}

resource "aws_iam_role" "submitter" {
  for_each             = var.submitters
  name                 = "${var.name_prefix}-submitter-${each.key}"
  description          = "Submitter ${each.key}: put files under landing/${each.key}/, read receipts under outbox/${each.key}/."
  assume_role_policy   = data.aws_iam_policy_document.submitter_trust[each.key].json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy" "submitter" {
  for_each = var.submitters
  name     = "submitter-confinement"
  role     = aws_iam_role.submitter[each.key].id
  policy   = data.aws_iam_policy_document.submitter[each.key].json
}

# ================================================================ recipients
data "aws_iam_policy_document" "recipient_trust" {
  for_each = var.recipients
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = each.value.trusted_principal_arns
    }
    dynamic "condition" {
      for_each = each.value.external_id == null ? [] : [each.value.external_id]
      content {
        test     = "StringEquals"
        variable = "sts:ExternalId"
        values   = [condition.value]
      }
    }
  }
}

data "aws_iam_policy_document" "recipient" {
  for_each = var.recipients

  statement {
    sid       = "ListOwnPublishPrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.publish]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${each.key}/", "${each.key}/*"]
    }
  }

  statement {
    sid       = "ReadOwnPublishPrefix"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.publish}/${each.key}/*"]
  }

  statement {
    sid       = "DecryptThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.phi_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [local.publish]
    }
  }
}

resource "aws_iam_role" "recipient" {
  for_each             = var.recipients
  name                 = "${var.name_prefix}-recipient-${each.key}"
  description          = "Recipient ${each.key}: read feeds under publish/${each.key}/."
  assume_role_policy   = data.aws_iam_policy_document.recipient_trust[each.key].json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy" "recipient" {
  for_each = var.recipients
  name     = "recipient-confinement"
  role     = aws_iam_role.recipient[each.key].id
  policy   = data.aws_iam_policy_document.recipient[each.key].json
}

# ================================================================ auditor
data "aws_iam_policy_document" "auditor_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = var.auditor_trusted_principal_arns
    }
    condition {
      test     = "Bool"
      variable = "aws:MultiFactorAuthPresent"
      values   = ["true"]
    }
  }
}

data "aws_iam_policy_document" "auditor" {
  statement {
    sid       = "ListLedgerAndLogs"
    effect    = "Allow"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"]
    resources = [local.ledger, local.logs]
  }

  statement {
    sid    = "ReadLedgerAndLogs"
    effect = "Allow"
    actions = [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:GetObjectRetention",
      "s3:GetObjectLegalHold",
    ]
    resources = ["${local.ledger}/*", "${local.logs}/*"]
  }

  statement {
    sid       = "ReadLedgerLockConfiguration"
    effect    = "Allow"
    actions   = ["s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning"]
    resources = [local.ledger]
  }

  statement {
    sid       = "DecryptLedgerAndTrailThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [var.audit_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
  }
}

resource "aws_iam_role" "auditor" {
  name                 = "${var.name_prefix}-auditor"
  description          = "Auditor: read the consent/disclosure ledger and the audit logs."
  assume_role_policy   = data.aws_iam_policy_document.auditor_trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy" "auditor" {
  name   = "auditor-read-only"
  role   = aws_iam_role.auditor.id
  policy = data.aws_iam_policy_document.auditor.json
}
