"""How the server is reached: stdio for local launchers, streamable HTTP for remote connectors."""
