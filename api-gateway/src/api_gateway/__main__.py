from api_gateway.cli import app

app()
