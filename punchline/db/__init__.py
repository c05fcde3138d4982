"""Postgres access: models, engine and the repository modules that hold all SQL."""
