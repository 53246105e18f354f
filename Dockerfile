# syntax=docker/dockerfile:1
# One image for every shopstream role; the command picks it:
#   shopstream connectors serve | api serve | worker orders|inventory|shop-sync|views|review |
#   topics apply --overlay … (the one-shot topology job).
#
# Base image, pinned by digest. The digest below is the `python:3.11-slim` index digest found in
# public repositories (not re-read from Docker Hub here: this machine has no registry access).
# Before a release, refresh it here (the one place; both stages below start from `base`):
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS base

# ---- build stage: a virtualenv with the locked dependencies and shopstream itself ----------------
FROM base AS build
# The lock file: every pinned distribution with its hashes (pip-compile --generate-hashes; the
# project's lock path lives here only, tests/deploy/test_image.py reads this line).
ARG LOCK_FILE=requirements.lock
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/shopstream
COPY ${LOCK_FILE} /src/requirements.lock
# --require-hashes: every distribution must be pinned and match its hash; --only-binary: wheels only,
# so no compiler is needed here and nothing is built from an unpinned sdist; --no-deps: only what
# the lock lists (the lock holds the build backend too, so the project build below needs no index).
RUN /opt/shopstream/bin/pip install --require-hashes --only-binary=:all: --no-deps -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY shopstream /src/shopstream
COPY schemas /src/schemas
COPY connectors /src/connectors
COPY processors /src/processors
COPY topology /src/topology
RUN /opt/shopstream/bin/pip install --no-deps --no-index --no-build-isolation /src \
 && /opt/shopstream/bin/pip uninstall --yes pip setuptools wheel

# ---- final stage: the runtime only (no pip in the venv, no compiler, no source tree) ---------------
FROM base
ENV PATH=/opt/shopstream/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHOPSTREAM_HTTP_HOST=0.0.0.0 \
    SHOPSTREAM_STATE_DIR=/var/lib/shopstream
RUN groupadd --system --gid 10001 shopstream \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/shopstream \
      --shell /usr/sbin/nologin shopstream \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/shopstream
COPY --from=build /opt/shopstream /opt/shopstream
COPY --chmod=0755 deploy/healthcheck.py /usr/local/bin/shopstream-healthcheck
WORKDIR /var/lib/shopstream
# Numeric user so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Long-running roles answer /readyz on their admin port; the one-shot `topics apply` job exits
# before the first check, so the check applies to the services only (compose overrides it per
# service with the right port; Kubernetes uses the chart's probes instead).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["shopstream-healthcheck"]
ENTRYPOINT ["shopstream"]
CMD ["--help"]
