"""Routes of the registry domain: its JSON API (``api``) and its pages (``pages``)."""

from edc.routes.registry import api, owner, pages

__all__ = ["api", "owner", "pages"]
