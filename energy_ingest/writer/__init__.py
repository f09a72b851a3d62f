"""The group-commit writer: readings of concurrent requests share one transaction per batch."""
