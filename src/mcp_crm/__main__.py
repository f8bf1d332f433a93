from mcp_crm.cli import app

app()
