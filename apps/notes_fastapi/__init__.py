"""The notes service on FastAPI + SQLAlchemy 2.0 (async): the twin of ``apps.notes``, on the same
data layer (``apps.notes.db``, ``apps.notes.queries``) and the same Alembic migrations."""
