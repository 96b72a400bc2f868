# ARX API image (used by compose.yaml). The same image runs the Falcon sandbox.
FROM python:3.11-slim
# xmlsec1 verifies SAML signatures (pysaml2).
RUN apt-get update && apt-get install -y --no-install-recommends xmlsec1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY arx ./arx
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 arx \
    && install -d -o arx -g arx -m 0700 /var/lib/arx/spool
# Result events wait here while PostgreSQL is away (compose mounts a volume).
ENV ARX_SPOOL_DIR=/var/lib/arx/spool
USER arx
EXPOSE 8080
CMD ["arx", "serve", "--host", "0.0.0.0", "--port", "8080"]
