# One image for every shopstream service; the command picks the role
# (e.g. `shopstream worker orders`, `shopstream connectors serve`, `shopstream api serve`).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SHOPSTREAM_HTTP_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
# The pinned, hash-checked dependencies first (a changed or substituted file fails the build), then the
# package itself without resolving anything more.
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY shopstream shopstream
COPY schemas schemas
COPY connectors connectors
COPY processors processors
COPY topology topology
RUN pip install --no-cache-dir --no-deps . && useradd --create-home shopstream
USER shopstream
ENTRYPOINT ["shopstream"]
CMD ["--help"]
