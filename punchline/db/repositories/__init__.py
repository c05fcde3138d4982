"""All SQL lives in these modules. Callers pass a connection and domain arguments."""
