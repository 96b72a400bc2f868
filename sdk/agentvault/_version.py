"""The distribution version, also sent as ``User-Agent: agentvault/<version>``."""

__version__ = "0.1.0"
