"""The policy engine client: asks the OPA sidecar for ``data.arx.decision``."""
