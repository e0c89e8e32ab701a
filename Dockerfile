# Two images from one file, in plain Dockerfile syntax (BuildKit and the legacy builder
# both build it):
#
#   service  `replay serve` alone: no torch, no compilers, a numeric non-root user
#   trainer  CPU torch, gymnasium, TensorBoard: `replay train`, `replay collect`, `tensorboard`
#
#   docker build --target service -t replay-service:service .
#   docker build --target trainer -t replay-service:trainer .
#
# Build args: BASE_IMAGE (a Debian-based image with python3 >= 3.11 and its venv module)
# and TORCH_INDEX_URL (an extra package index that serves torch==2.13.0 as a CPU build;
# PyPI's build of the same version is the CUDA one, several GB larger).
#
# Dependencies install from pyproject.toml alone, in a layer below the code: after an
# edit to the code, a rebuild reuses them and only reinstalls the package itself.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# One numeric user for every image, so the volumes one writes stay readable by the others.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/replay \
        --shell /usr/sbin/nologin replay


FROM python AS source
WORKDIR /src
COPY pyproject.toml README.md ./
COPY replay_service ./replay_service
COPY wire ./wire
COPY service ./service
COPY client ./client
COPY trainer ./trainer
COPY cli ./cli
COPY benchmarks ./benchmarks
COPY integrations ./integrations


FROM python AS service-deps
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
# The package's dependencies without its code: install it empty (its folders, from
# pyproject's package list: replay_service.X.Y lives in X/Y), then remove it.
RUN touch README.md \
    && python3 -c "import os, tomllib; packages = tomllib.load(open('pyproject.toml', 'rb')).get('tool').get('setuptools').get('packages'); list(os.makedirs(package.removeprefix('replay_service.').replace('.', '/'), exist_ok=True) for package in packages)" \
    && pip install . && pip uninstall --yes replay-service


FROM service-deps AS service
COPY --from=source /src /src
# No extras: the service needs neither torch nor gymnasium. The import fails the build
# when the service needs a package that pyproject.toml does not list; -P keeps /src (whose
# replay_service/ folder holds only the namespace's root) off the path, so the installed
# package is the one imported.
RUN pip install --no-deps . && python3 -P -c "import replay_service.service.app, replay_service.cli"
ENV REPLAY_HOST=0.0.0.0 \
    REPLAY_PORT=8000
USER 10001:10001
WORKDIR /home/replay
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('REPLAY_PORT', '8000') + '/healthz', timeout=2)"]
CMD ["replay", "serve"]


FROM service-deps AS trainer-deps
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" "./[trainer,atari,box2d]" \
    && pip uninstall --yes replay-service


FROM trainer-deps AS trainer
COPY --from=source /src /src
RUN pip install --no-deps . \
    && python3 -P -c "import torch, ale_py, Box2D, replay_service.trainer.service_loop, replay_service.client.collector.loop; assert not torch.version.cuda" \
    && mkdir /runs && chown 10001:10001 /runs
ENV REPLAY_LOG_DIR=/runs \
    MPLBACKEND=Agg
USER 10001:10001
WORKDIR /home/replay
CMD ["replay", "train"]
