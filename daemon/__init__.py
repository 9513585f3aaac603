"""eliq-daemon: the continual-learning monitoring service around the eliq critic
(state, the release cycle, MLflow registration, drift, alerts, scheduling)."""
