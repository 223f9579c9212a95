"""lagduel's pipeline layers: topology, events, Kafka, the embedded broker, adapters and backends."""
