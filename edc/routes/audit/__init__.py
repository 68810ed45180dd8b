"""Routes of the audit domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.audit import api, pages

__all__ = ["api", "pages"]
