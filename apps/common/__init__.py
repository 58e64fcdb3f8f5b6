"""Framework-neutral parts of the shop service: settings, database, repository, live events.

Both ``apps.shop`` (the toolkit) and ``apps.shop_fastapi`` (FastAPI) use these modules, so what
differs between the two services is only the web framework.
"""
