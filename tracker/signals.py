"""Signals the tracker sends, so that apps above it can react without the tracker knowing them."""

from django.dispatch import Signal

# Sent with `documents` (a list of stored documents) after they were newly tracked. The
# alerts app matches its rules here. Receivers must be quick: they run inside the drain.
documents_tracked = Signal()
