"""What the engine tells its operators: structured logs with request ids, Prometheus metrics.

/metrics itself is served by `health`: this package sits below the web kit and the features."""
