"""Checked by mypy (never run by pytest): ``ProfilingMiddleware``'s options through
``add_middleware``, and the mistakes that must be type errors."""

from starlette.requests import HTTPConnection

from toolkit import App, Middleware
from toolkit.middleware import ProfilingMiddleware


def from_the_office(conn: HTTPConnection) -> bool:
    return conn.client is not None and conn.client.host == "10.0.0.5"


app = App(debug=True, middleware=[Middleware(ProfilingMiddleware, header="X-Profile")])
app.add_middleware(ProfilingMiddleware, query_param="_profile", interval=0.0005)
app.add_middleware(ProfilingMiddleware, force=True, allow=from_the_office)

app.add_middleware(ProfilingMiddleware, query="profile")  # type: ignore[call-arg]
app.add_middleware(ProfilingMiddleware, force="yes")  # type: ignore[arg-type]
app.add_middleware(ProfilingMiddleware, allow=True)  # type: ignore[arg-type]
app.add_middleware(ProfilingMiddleware, interval="1ms")  # type: ignore[arg-type]
