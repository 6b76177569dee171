from backtesting_service.cli import app

app()
