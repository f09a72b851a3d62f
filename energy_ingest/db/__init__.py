"""PostgreSQL access: pools, named SQL, migrations, partitions, the embedded server."""
