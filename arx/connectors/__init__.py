"""Connectors: one small class per security tool, declared in the registry."""
