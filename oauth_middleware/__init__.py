"""oauth-middleware: OAuth 2.0 authorization server and guard as one WSGI middleware."""
