# A stage function image without faas-cli: of-watchdog (http mode) forks the stage's function server.
# The build context is this directory (`lagduel deploy openfaas --render DIR` writes it, wheel included):
#   docker build -f DIR/function.Dockerfile --build-arg STAGE=score -t dev.local/lagduel-score:0.1.0 DIR
# max_inflight / exec_timeout / read_timeout / write_timeout come from stack.yml's environment at deploy
# time (rendered from the topology); the values below are the topology defaults.
FROM ghcr.io/openfaas/of-watchdog:0.11.3 AS watchdog

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY function/wheels/ /tmp/wheels/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install /tmp/wheels/lagduel-*.whl \
 && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python:3.11-slim-bookworm
ARG STAGE=validate
COPY --from=watchdog /fwatchdog /usr/bin/fwatchdog
COPY --from=build /opt/venv /opt/venv
COPY function/pipeline.yaml /home/app/function/pipeline.yaml
USER 65532:65532
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    LAGDUEL_STAGE=${STAGE} LAGDUEL_TOPOLOGY=/home/app/function/pipeline.yaml \
    fprocess="python -m pipeline.openfaas.index" mode="http" upstream_url="http://127.0.0.1:5000" \
    max_inflight="4" exec_timeout="30s" read_timeout="35s" write_timeout="35s"
EXPOSE 8080
HEALTHCHECK --interval=5s CMD [ -e /tmp/.lock ] || exit 1
CMD ["fwatchdog"]
