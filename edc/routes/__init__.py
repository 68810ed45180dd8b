"""The routes, one package per domain: ``api.py`` is its JSON API router (/api/v1), ``pages.py``
its HTML pages router. ``edc.app.create_app`` includes them all."""
