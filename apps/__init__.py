"""Example services built on the toolkit (see apps/README.md and apps/SPEC.md)."""
