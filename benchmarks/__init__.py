"""Benchmarks: the toolkit against FastAPI and a hand-written Starlette floor.

``python -m benchmarks`` runs everything; see ``benchmarks/README.md`` for the method.
Nothing here is imported by the toolkit itself.
"""
