"""Server-rendered pages for people (sign-in now; reviews later). No JavaScript,
no third-party asset: security teams run ARX air-gapped."""
