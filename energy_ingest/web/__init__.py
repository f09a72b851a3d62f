"""The web kit every feature builds on: JSON in and out, the engine's state and its FastAPI
dependencies, the security headers and Host checks. Knows no feature."""
