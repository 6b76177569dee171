from strategy_service.cli import app

app()
