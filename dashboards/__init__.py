"""What operators look at: the Evidently project (defined in code) and, as files beside
this package, the Grafana dashboard and Prometheus configuration that compose provisions."""
