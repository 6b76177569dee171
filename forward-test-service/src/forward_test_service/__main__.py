from forward_test_service.cli import app

app()
