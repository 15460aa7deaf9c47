"""Shared plumbing: queue broker, inboxes, errors, health, metrics."""
