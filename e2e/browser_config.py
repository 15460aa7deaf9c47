"""Where the e2e browser tests find the stack and how they start Debian's Chromium."""

import os

BASE_URL = os.environ.get("E2E_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
# Debian's Chromium as it is, never a downloaded browser build; no background traffic of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
