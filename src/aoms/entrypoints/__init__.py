"""Entry points: the HTTP API, the CLI and the in-process workers."""
