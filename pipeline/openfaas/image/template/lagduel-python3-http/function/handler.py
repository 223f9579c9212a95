# The function handler of every stage: the stage is chosen by LAGDUEL_STAGE (set in stack.yml).
from pipeline.openfaas.handler import handle  # noqa: F401  (the python3-http contract: handle(event, context))
