"""The composition root: settings, database wiring, keys, the FastAPI app, routes and the CLI.

Only this package knows about HTTP, environment variables and files on disk; the domain
packages receive what they need as arguments.
"""
