"""lagduel: Knative Eventing vs OpenFaaS+KEDA for Kafka stream processing, measured."""

__version__ = "0.1.0"
