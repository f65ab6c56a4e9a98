"""OS1 clients: the Python SDK and the terminal client."""
