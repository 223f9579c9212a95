"""The simulator: the same pure autoscaler policies as the local emulation, on a modeled data plane.

`lagduel simulate` runs a topology on each backend at scales one machine cannot carry for real. The
control planes are the very objects the emulation drives (`pipeline.autoscale`: the KPA, KEDA's kafka
scaler and scale loop, the HPA), fed the same observations at the same periods; only the data plane —
Kafka partitions, dispatchers, replicas, service times — is modeled (ARCHITECTURE.md "simulation").

Modules, by what they model:

- `model`:       the settings a simulated run uses, per stage and backend, read from the topology.
- `plant`:       the data plane in fixed time steps: per-partition queues, dispatch, service, commits.
- `controllers`: each backend's control plane driving its policy objects, and its pods.
- `engine`:      the time loop, the load, and the 1 s series a run folder holds.

The run folder, report and SLOs are the duel's own (`load.simulation` writes them). Everything in this
package is pure: no Kafka, no asyncio, no clock; the same seed gives the same run.
"""
