"""OpenFaaS + KEDA: the function adapter, the watchdog and gateway emulations, the Kafka connector,
the manifest renderer and the local backend."""
