from imagegate.cli.main import app

app()
