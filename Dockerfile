# The API image used by docker-compose.yml. Code only: no data directory, no key, no secret is
# copied in (.dockerignore keeps var/, secrets/ and every *.key out of the build context);
# keys live in the /data volume, sealed under SHANAKHT_MASTER_KEY, which comes from a secret
# at run time.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY identity ./identity
COPY locker ./locker
COPY signing ./signing
COPY audit ./audit
COPY api ./api
COPY tools ./tools
# The QR scanner the verifier page serves comes from npm, integrity-checked, never a CDN.
RUN python tools/web_assets.py --served && pip install . && useradd --system --uid 10001 --home-dir /data shanakht \
    && mkdir /data && chown shanakht /data && chmod 700 /data \
    && rm -rf /app/api /app/identity /app/locker /app/signing /app/audit /app/tools
USER shanakht
WORKDIR /data
EXPOSE 8000
CMD ["shanakht", "serve", "--host", "0.0.0.0", "--port", "8000"]
