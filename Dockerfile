# ARX API image (used by compose.yaml). The same image runs the Falcon sandbox.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY arx ./arx
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 arx
USER arx
EXPOSE 8080
CMD ["arx", "serve", "--host", "0.0.0.0", "--port", "8080"]
