"""Use cases: each takes a unit of work and domain values, and returns plain results."""
