"""WSGI entry point: `gunicorn wsgi:app`."""
from receiver import create_app

app = create_app()
