"""An OCI Distribution (v1.1) registry server: `dockling registry serve` and `gc`.

The registry has its own small HTTP layer (`http.py`, with zero-copy blob downloads), its own
error codes (`errors.py`), a filesystem layout (`storage.py`) whose blobs live in a
`dockling.content.ContentStore`, and the route handlers in `app.py`.
"""
