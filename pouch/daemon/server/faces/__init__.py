"""Per-face serializers: ``pouch`` (PouchContainer's API) and ``moby`` (Docker's Engine API).

Both modules expose the same functions; they take the face-neutral views the
managers build and return what that face's clients expect.
"""
