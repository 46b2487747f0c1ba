"""The node's image store: content-addressed blobs, layer snapshots, references, registry pulls and
image archives. ImageService (service.py) is the facade the Engine API routes and the executors use."""
