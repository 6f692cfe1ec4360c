"""Access-token formats behind one Protocol: opaque (stored) and JWT (signed)."""

from .base import TokenFormat, new_token_string

__all__ = ["TokenFormat", "new_token_string"]
