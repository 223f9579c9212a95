# The Kafka connector of the OpenFaaS backend (one Deployment per stage, see connectors.yaml).
# The build context is this directory (`lagduel deploy openfaas --render DIR` writes it, wheel included):
#   docker build -f DIR/connector.Dockerfile -t dev.local/lagduel-connector:0.1.0 DIR
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY function/wheels/ /tmp/wheels/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install /tmp/wheels/lagduel-*.whl \
 && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python:3.11-slim-bookworm
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["lagduel"]
CMD ["connector", "--help"]
