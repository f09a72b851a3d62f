"""Which meter feeds which vehicle, and when: time-ranged assignments guarded by the database."""
