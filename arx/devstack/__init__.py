"""Local services for development, the demo and the test suite.

``arx.devstack`` starts the real things ARX depends on, on loopback, with no
container engine: a throw-away PostgreSQL cluster (``postgres``) and an ``opa``
sidecar serving locally built bundles (``opa``). ``process`` and ``ports`` are
the small pieces both use.

This code runs in scripts and pytest session fixtures, never on the API's event
loop, so it is synchronous. It fails loudly: a missing binary or a service that
does not become ready raises ``DevstackError`` naming what to install or the
tail of the service's log; nothing is silently skipped.
"""
