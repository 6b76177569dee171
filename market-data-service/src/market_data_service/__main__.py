from market_data_service.cli import app

app()
