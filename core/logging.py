"""Request-id propagation: a context variable and a logging filter that reads it."""

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds the current request id to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach `request_id` unless the record already carries one."""
        if not hasattr(record, "request_id"):
            # django.request logs a response after the middleware has unbound the id, but it
            # passes the request along.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or request_id_var.get()
        return True
