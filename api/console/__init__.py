"""The web console's pieces: sessions and CSRF, the message catalog, rendering, chart options,
templates and static files. Its routes are in :mod:`api.routes.console`; docs/console.md."""
