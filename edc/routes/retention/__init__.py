"""Routes of the retention review: its JSON API (``api``) and pages (``pages``)."""

from edc.routes.retention import api, pages

__all__ = ["api", "pages"]
