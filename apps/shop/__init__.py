"""The shop service on the toolkit (see apps/SPEC.md): ``uvicorn apps.shop.main:app``."""
