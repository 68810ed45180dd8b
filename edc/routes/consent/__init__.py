"""Routes of the consent domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.consent import api, pages

__all__ = ["api", "pages"]
