output "phi_key_arn" {
  description = "ARN of the PHI-zone key (PHMX_KMS_KEY_ID)."
  value       = aws_kms_key.phi.arn
}

output "phi_key_alias" {
  description = "Alias of the PHI-zone key."
  value       = aws_kms_alias.phi.name
}

output "audit_key_arn" {
  description = "ARN of the ledger/audit key."
  value       = aws_kms_key.audit.arn
}

output "audit_key_alias" {
  description = "Alias of the ledger/audit key."
  value       = aws_kms_alias.audit.name
}
