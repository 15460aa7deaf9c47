"""Migrations of the core app (data only: it has no models)."""
