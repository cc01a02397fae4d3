"""The registry client: auth, resolve, resumable fetch, push.  It yields progress events
(`progress.py`) and never prints; the API layer turns them into Docker's JSON lines.
"""
