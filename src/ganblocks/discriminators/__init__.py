"""discriminators."""

__all__: list[str] = []
