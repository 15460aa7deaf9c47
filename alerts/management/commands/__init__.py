"""`manage.py alerts`."""
