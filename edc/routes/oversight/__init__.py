"""Routes of the data security office's oversight: the Appendix F self-check page."""

from edc.routes.oversight import pages

__all__ = ["pages"]
