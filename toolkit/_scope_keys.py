"""The keys the toolkit puts in an ASGI ``scope``, in one place (no module imports another's for one string).

- ``ROUTE_SCOPE_KEY``: the matched route's template (``/items/{item_id:int}``), never the raw
  path; set by the router before the endpoint runs (metrics and rate limits label by it).
- ``TIMING_SCOPE_KEY``: a dict ``TimingMiddleware`` puts there when it wants stage timings.
- ``RESPONSE_HEADERS_SCOPE_KEY``: headers a dependency wants on every response of the request,
  error responses included (a rate limit's remaining count on a 401).
- ``WEBSOCKET_UNACCEPTED_KEY``: set when a websocket route fails before ``accept()``: an
  ``HTTPException`` may then refuse the handshake with an HTTP response.
"""

__all__ = ["RESPONSE_HEADERS_SCOPE_KEY", "ROUTE_SCOPE_KEY", "TIMING_SCOPE_KEY", "WEBSOCKET_UNACCEPTED_KEY"]

ROUTE_SCOPE_KEY = "toolkit.route"
TIMING_SCOPE_KEY = "toolkit.timing"
RESPONSE_HEADERS_SCOPE_KEY = "toolkit.response_headers"
WEBSOCKET_UNACCEPTED_KEY = "toolkit.websocket_unaccepted"
