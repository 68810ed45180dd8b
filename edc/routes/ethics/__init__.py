"""Routes of the ethics domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.ethics import api, pages

__all__ = ["api", "pages"]
