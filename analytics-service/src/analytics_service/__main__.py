from analytics_service.cli import app

app()
