# ARX API image (used by compose.yaml). The same image runs the Falcon sandbox.
# ARX runs its own opa (the version pinned in opa/VERSION) to vet, build and
# sign policy bundles; it never serves decisions from it.
FROM openpolicyagent/opa:1.22.3-static AS opa

FROM python:3.11-slim
# xmlsec1 verifies SAML signatures (pysaml2).
RUN apt-get update && apt-get install -y --no-install-recommends xmlsec1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=opa /opa /usr/local/bin/opa
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY arx ./arx
# The base policy library ARX serves its sidecars.
COPY rego ./rego
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 arx \
    && install -d -o arx -g arx -m 0700 /var/lib/arx/spool /var/lib/arx/signing /var/lib/arx/audit \
    && install -d -o arx -g arx -m 0755 /var/lib/arx/verification
# Result events wait here while PostgreSQL is away (compose mounts a volume).
ENV ARX_SPOOL_DIR=/var/lib/arx/spool \
    ARX_OPA_BINARY=/usr/local/bin/opa \
    ARX_POLICY_BASE_DIR=/app/rego
USER arx
EXPOSE 8080
CMD ["arx", "serve", "--host", "0.0.0.0", "--port", "8080"]
