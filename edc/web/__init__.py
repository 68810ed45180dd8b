"""The page toolkit the routes' pages are built with (htpy): ``layout`` (the page, the menu per
role and breadcrumbs, redirects, error pages, CSRF token), ``menu`` (which pages each role's
work is on), ``forms`` (a refused form re-rendered with its input and each error at its
field), ``csrf`` (the check of every form POST), ``inputs`` (reading posted forms), ``widgets``
(fields, drop-downs, banners), ``labels`` (every code shown to people, labelled), ``timefmt``
(times in the display zone), ``charts`` (server-rendered SVG), ``signatures`` (showing and
asking for electronic signatures), ``assets`` (htmx, Swagger UI, the stylesheet) and
``static/``. Every page works without JavaScript. The pages themselves are in
``edc.routes.<domain>.pages``."""
