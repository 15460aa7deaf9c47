"""Management commands of the alerts app."""
