# syntax=docker/dockerfile:1.7
# One image recipe for the gateway, every service and the `shop` CLI (migrations), chosen by the
# build argument SERVICE (gateway, auth, users, catalog, inventory, orders, payments, shipping,
# notifications, cli); the workspace package is `shop-${SERVICE}`.
#
#   docker build --build-arg SERVICE=orders -t shop/orders .
#
# Stages: `manifests` keeps only the lock and the pyproject files, so the dependency layer is
# rebuilt only when they change; `build` installs the locked dependencies, then the workspace
# members; `runtime` is a slim image with the virtualenv and the sources, run as a non-root user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS manifests
WORKDIR /src
COPY . .
# Keep the workspace's shape (uv resolves every member) but nothing that changes with the code.
RUN mkdir /manifests \
 && find . -name pyproject.toml -not -path './.venv/*' -exec cp --parents {} /manifests/ \; \
 && cp uv.lock /manifests/

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ARG UV_VERSION=0.13.9
RUN test -n "${SERVICE}" || (echo "build argument SERVICE is required (e.g. --build-arg SERVICE=orders)" >&2; exit 1)
# uv comes from PyPI, as on the developers' machines; Python is the base image's.
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "shop-${SERVICE}"
COPY contracts ./contracts
COPY kit ./kit
COPY gateway ./gateway
COPY cli ./cli
COPY services ./services
# Workspace members stay editable: a service finds its Alembic `migrations/` folder next to its
# source (shopkit.migrations.migrations_dir), so the sources ship in the image as they are laid
# out in the repository.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "shop-${SERVICE}"

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="shop-${SERVICE}" \
      org.opencontainers.image.description="Shop platform: ${SERVICE}" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 shop \
 && useradd --system --uid 10001 --gid shop --home-dir /app --no-create-home --shell /usr/sbin/nologin shop
WORKDIR /app
COPY --from=build --chown=root:root /app /app
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/shop-entrypoint
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHOP_SERVICE=${SERVICE} \
    SHOP_HOST=0.0.0.0
# Files stay root-owned and read-only for the process: the service writes nothing to disk.
USER 10001:10001
EXPOSE 8000-8008
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["shop-entrypoint", "healthcheck"]
ENTRYPOINT ["shop-entrypoint"]
CMD ["serve"]
