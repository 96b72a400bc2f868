"""The policy lifecycle: bundles pushed, vetted with the real ``opa``, stored,
signed and activated, served to the sidecars, rolled back, and replayed
against recorded decisions before they go live."""
