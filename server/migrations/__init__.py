"""Alembic migrations of the Fieldops schema (Flask-Migrate), shipped inside the package."""
