"""What the engine tells its operators: structured logs with request ids, Prometheus metrics."""
