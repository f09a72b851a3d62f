"""History out: a window of one kind's readings streamed as CSV or JSON Lines (COPY TO STDOUT)."""
