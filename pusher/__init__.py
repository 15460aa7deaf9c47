"""The pusher service: the authenticated push endpoint."""
