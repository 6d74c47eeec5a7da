# syntax=docker/dockerfile:1
# Growbin: one image for the API, the workers, beat, Flower and the one-shot commands
# (`growbin db upgrade`, `growbin topology apply`).
#
#   docker build -t growbin .
#
# The build stage has the compilers; it installs growbin and its dependencies, pinned by
# constraints.txt (the same pins as `make install` and CI), into a virtualenv. The final
# stage is that virtualenv on a slim Python with tini as PID 1 and a non-root user: no
# compiler, no pip, no cache.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Debian packages are not pinned one by one: the base image tag fixes the release, and a pin
# would break the build at its next security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/growbin
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY src ./src
# Flower (`celery -A growbin flower`) rides in the same image; constraints.txt pins it too.
ARG EXTRA_PACKAGES="flower"
RUN /opt/growbin/bin/pip install --constraint constraints.txt . ${EXTRA_PACKAGES} \
 && /opt/growbin/bin/pip check \
 && /opt/growbin/bin/python -m pip uninstall -y pip

FROM ${PYTHON_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 growbin \
 && useradd --system --uid 10001 --gid growbin --home-dir /var/lib/growbin \
      --shell /usr/sbin/nologin growbin \
 && mkdir -p /var/lib/growbin/journal /var/lib/growbin/images \
 && chown -R growbin:growbin /var/lib/growbin
COPY --from=build /opt/growbin /opt/growbin
# The journal and image directories exist and belong to the user, so a fresh named volume
# (compose) or an fsGroup volume (Kubernetes) mounted there is writable.
ENV PATH=/opt/growbin/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GROWBIN_IMAGE_DIR=/var/lib/growbin/images \
    GROWBIN_JOURNAL_PATH=/var/lib/growbin/journal/{hostname}.db
USER 10001:10001
WORKDIR /var/lib/growbin
EXPOSE 8000 9090 5555
# tini forwards SIGTERM to the command (a worker then finishes its tasks and syncs its
# journal) and reaps the processes the prefork pool leaves behind.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["growbin", "api", "--host", "0.0.0.0", "--port", "8000"]
