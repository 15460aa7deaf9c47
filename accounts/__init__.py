"""The accounts service: users in Redis, JWT login, refresh, logout and revocation."""
