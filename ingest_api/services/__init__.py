"""Synchronous domain flows of the edge. Each takes domain arguments; SQL lives in repositories."""
