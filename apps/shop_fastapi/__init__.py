"""The shop service on FastAPI + pydantic v2: the baseline twin of ``apps.shop`` (see apps/SPEC.md)."""
