"""Routes of the entry domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.entry import api, pages

__all__ = ["api", "pages"]
