"""The page toolkit the routes' pages are built with (htpy): ``layout`` (the page, navigation,
redirects, error pages, CSRF token), ``csrf`` (the check of every form POST), ``inputs``
(reading posted forms), ``widgets`` (fields, drop-downs, banners), ``signatures`` (showing and
asking for electronic signatures) and ``static/``. Every page works without JavaScript; htmx
adds partial updates. The pages themselves are in ``edc.routes.<domain>.pages``."""
