# The template's entry point (fprocess): serves function/handler.py's handle(event, context) on
# 127.0.0.1:5000, the upstream_url of-watchdog proxies to in http mode.
from function.handler import handle

from pipeline.openfaas.index import serve

if __name__ == "__main__":
    serve(handle)
