"""The Docker Engine API front door: HTTP on a unix socket or TCP, translated into typed calls on a
Backend (backend.py). Start it with `shoal.engineapi.server.serve(backend, hosts)`."""
