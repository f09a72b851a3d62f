"""API keys: hashed storage, scopes, device binding, and the guard every endpoint passes."""
