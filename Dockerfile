# The example service (apps/shop) served by `toolkit run`, on the locked dependencies of uv.lock.
#
#   docker build -t shop:0.1.0 .
#   docker run --rm -p 8000:8000 -e SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')" shop:0.1.0
#
# Alone it keeps an SQLite file in /app/data and sessions in memory; compose.yaml runs it with
# PostgreSQL and Redis, deploy/kubernetes/ on a cluster. tests/test_deploy_files.py lints this
# file (hadolint) and checks it against the app and the other deploy files.

# --- builder: a virtualenv at /opt/venv with exactly the versions of uv.lock ---------------------
FROM python:3.11-slim AS builder

# The uv the Makefile pins (UV_VERSION); the test checks that the two agree.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

WORKDIR /src

# Dependencies first, in a layer of their own (rebuilt only when the lock changes). The extras are
# the shop's: redis (sessions and rate-limit counters when REDIS_URL is set), postgres (asyncpg,
# DATABASE_URL=postgresql://...), jwt (bearer tokens), forms (the login form and image uploads),
# argon2 (verifying argon2 password hashes), graphql (strawberry, for /graphql). Not metrics: the
# shop has no /metrics. --locked refuses a uv.lock that does not match pyproject.toml; --no-dev
# leaves development tools out.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project \
        --extra redis --extra postgres --extra jwt --extra forms --extra argon2 --extra graphql

# Then the toolkit itself, installed as a package (not editable): it brings the `toolkit` command.
COPY toolkit ./toolkit
RUN uv sync --locked --no-dev --no-editable \
        --extra redis --extra postgres --extra jwt --extra forms --extra argon2 --extra graphql

# --- runtime: the virtualenv and the shop's code, run by an unprivileged user --------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    DATABASE_URL=sqlite:////app/data/shop.db

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it (deploy/kubernetes/).
RUN groupadd --system --gid 10001 shop \
    && useradd --system --uid 10001 --gid shop --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shop

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# Only the shop and the code it shares (not its FastAPI twin, which needs FastAPI).
COPY apps/__init__.py apps/
COPY apps/common apps/common
COPY apps/shop apps/shop
# Bytecode now (the code is read-only at run time); data/ is the one directory the user may write
# (the default SQLite database; with DATABASE_URL=postgresql://... it stays empty).
RUN python -m compileall -q apps \
    && mkdir data \
    && chown shop:shop data

USER 10001:10001
EXPOSE 8000

# Liveness: the shop's /health (no dependency checked). slim has no curl: urllib raises, and the
# check fails, on anything but a 2xx. It follows PORT (toolkit run's default port) if set.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=2)"]

# Exec form: `toolkit run` is PID 1 and gets SIGTERM itself (it stops accepting, lets requests in
# flight finish for up to --timeout-graceful-shutdown seconds, default 25, then runs the lifespan
# shutdown). `docker stop` waits 10 s before SIGKILL unless told more (--time 30; compose.yaml sets
# stop_grace_period). Workers: WEB_CONCURRENCY (default 1). Other commands run in place of it, e.g.
# `docker run ... shop:0.1.0 python -m apps.shop.admin create-admin alice --email alice@example.com`.
CMD ["toolkit", "run", "apps.shop.main:app"]
