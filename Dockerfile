# The API image used by docker-compose.yml.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY identity ./identity
COPY locker ./locker
COPY signing ./signing
COPY audit ./audit
COPY api ./api
RUN pip install . && useradd --system --uid 10001 --home-dir /data shanakht \
    && mkdir /data && chown shanakht /data
USER shanakht
EXPOSE 8000
CMD ["shanakht", "serve", "--host", "0.0.0.0", "--port", "8000"]
