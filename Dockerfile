# The engine against an external PostgreSQL (see docker-compose.yml); DATABASE_URL is required.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Pinned, hash-checked dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md ./
COPY energy_ingest ./energy_ingest
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --no-create-home engine

USER engine
ENV EIE_HOST=0.0.0.0 \
    EIE_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"]

# exec form: SIGTERM reaches the engine, which commits what it accepted before exiting.
CMD ["energy-ingest", "serve"]
