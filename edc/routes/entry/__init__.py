"""Routes of the entry domain: its JSON API (``api``), its pages (``pages``) and the pages of
internal exports and their approval (``exports``)."""

from edc.routes.entry import api, exports, pages

__all__ = ["api", "exports", "pages"]
