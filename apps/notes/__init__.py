"""Authors and notes on SQLAlchemy 2.0 (async) and Alembic: the toolkit's database recipe."""
