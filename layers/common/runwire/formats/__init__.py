"""Wire formats: one module per client surface, each a pure encoder from stored chunks to bytes."""
