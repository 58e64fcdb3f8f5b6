"""``python -m toolkit run|dev APP``: the same as the ``toolkit`` command."""

from toolkit.serve.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
