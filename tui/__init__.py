"""Proctor's terminal front end: the `proctor` command and the Textual app.

Nothing here talks to openai or mlflow: every LLM and MLflow call goes through `core`. This package's
`__init__` stays empty so that `proctor ask` does not pay for importing Textual.
"""
