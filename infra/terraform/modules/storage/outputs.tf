output "bucket_names" {
  description = "Bucket name per zone: landing, lakehouse, outbox, publish, ledger, artifacts, logs."
  value = {
    landing   = module.landing.name
    lakehouse = module.lakehouse.name
    outbox    = module.outbox.name
    publish   = module.publish.name
    ledger    = module.ledger.name
    artifacts = module.artifacts.name
    logs      = aws_s3_bucket.logs.id
  }
}

output "bucket_arns" {
  description = "Bucket ARN per zone (same keys as bucket_names)."
  value = {
    landing   = module.landing.arn
    lakehouse = module.lakehouse.arn
    outbox    = module.outbox.arn
    publish   = module.publish.arn
    ledger    = module.ledger.arn
    artifacts = module.artifacts.arn
    logs      = aws_s3_bucket.logs.arn
  }
}

output "phi_bucket_arns" {
  description = "ARNs of the buckets holding PHI or disclosures (CloudTrail data events are recorded on these)."
  value       = [module.landing.arn, module.lakehouse.arn, module.outbox.arn, module.publish.arn, module.ledger.arn]
}
