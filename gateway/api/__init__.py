"""The HTTP API: one router per resource, dependencies in deps, exception handlers in errors."""
