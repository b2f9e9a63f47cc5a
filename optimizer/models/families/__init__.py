"""One module per model family; each exposes ``ADAPTERS``, which the registry (``_registry``) lists once."""
