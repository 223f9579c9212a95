"""Load for lagduel: seeded open-loop generator, lag sampler, sink reader, recovery metrics, reports."""
