"""The executor's units of work, one module per kind: a shard of sampling, of pair building
or of scoring, and a retune. Each is a plain importable function of picklable arguments,
run in the daemon's process or in a worker (:mod:`adapters.executors`), returning plain
data that the daemon alone records."""
