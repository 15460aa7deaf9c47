"""Settings per environment."""
