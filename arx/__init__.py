"""ARX: a governance proxy between AI agents and the security tools they operate."""

__version__ = "0.1.0"
