"""fastsd: fast, exact SparseDream and competing local-learning networks."""
__version__ = "0.1.0"
