# syntax=docker/dockerfile:1
# One image for every Sagaline process: `sagaline migrate`, `sagaline orchestrator`,
# `sagaline participant <name>`, `sagaline relay <service>` and the operator commands (`sagaline saga ...`).
# docker-compose.yml builds it once and picks the process with `command:`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Every dependency ships binary wheels for CPython 3.11 on glibc, so no compiler is needed.
# The [embedded] extra (embedded Postgres and Kafka for laptops and tests) is deliberately left out:
# in a container the stack talks to a real broker and a real database.
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin sagaline

# Run from an empty directory so the installed package, not the copied source tree, is what gets imported.
WORKDIR /home/sagaline
USER sagaline

# Prometheus metrics when SAGALINE_METRICS_PORT is set (docker-compose.yml sets 9464).
EXPOSE 9464

ENTRYPOINT ["sagaline"]
CMD ["--help"]
