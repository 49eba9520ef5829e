"""The HTTP face of ntkdyn: the API server (`service.server`), the Python client
(`service.client`) and the `ntkdyn` command over both (`service.cli`). Never imports torch."""
