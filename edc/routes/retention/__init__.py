"""Routes of the retention review: its JSON API (``api``)."""

from edc.routes.retention import api

__all__ = ["api"]
