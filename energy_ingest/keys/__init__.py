"""The /v1/keys feature: create, list and revoke API keys (HTTP and CLI), and the first admin key.

The guard every request passes, and the key records it reads, stay in `auth` below the features.
"""
