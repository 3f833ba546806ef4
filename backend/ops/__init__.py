"""ops: liveness, readiness, metrics."""
