"""Management commands of the accounts service."""
