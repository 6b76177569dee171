from notification_service.cli import app

app()
