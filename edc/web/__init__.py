"""Server-rendered pages (htpy). Every page works without JavaScript; htmx adds partial updates."""
