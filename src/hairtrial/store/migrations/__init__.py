"""Alembic migrations of the hairtrial trial database (shipped as package data)."""
