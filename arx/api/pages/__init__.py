"""Server-rendered pages for people: sign-in and reviews. No JavaScript, no
third-party asset: security teams run ARX air-gapped."""
