"""The officials' dashboard: server-rendered pages behind a login with roles (docs/central.md,
"Dashboard").  ``register_dashboard`` adds them to the central's Flask app."""

from offline_queue.central.dashboard.views import register_dashboard

__all__ = ["register_dashboard"]
