"""API keys: their format and scopes, hashed storage, and the guard every endpoint passes."""
