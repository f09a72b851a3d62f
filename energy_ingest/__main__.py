"""`python -m energy_ingest` runs the CLI."""

from energy_ingest.cli import main

main()
