"""Routes of the accounts domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.accounts import api, pages

__all__ = ["api", "pages"]
