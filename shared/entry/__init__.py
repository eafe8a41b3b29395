"""The ways in: HTTP handlers (runtime-free; `function_app.py` adapts them), OpenAPI, the CLI.

May import every other stage; nothing imports entry.
"""
