"""ssassoc.worker: the edges of the system: Kafka worker, replay, command line."""
