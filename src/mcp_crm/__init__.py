"""mcp-crm: a CRM that AI assistants operate through typed MCP tools."""

__version__ = "0.1.0"
