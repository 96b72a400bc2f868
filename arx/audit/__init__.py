"""The append-only audit trail (INV-001)."""
