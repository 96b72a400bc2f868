"""The credential vault (INV-005): envelope-encrypted connector secrets."""
