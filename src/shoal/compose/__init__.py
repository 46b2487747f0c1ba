"""Compose files for `shoal stack deploy`: loaded, interpolated, validated and converted into the Docker
API's specs the way the docker CLI's stack deploy does it on the client side."""
