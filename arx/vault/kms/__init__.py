"""Key-encryption keys held by a cloud KMS: an org brings its own (BYOK)."""
