"""Knative: the stage service, the manifests for a cluster, and the local emulation of Eventing and Serving."""
