"""The API service: signed webhooks, the GraphQL media library and the media-picker page.

Build the app with :func:`mediamill.api.app.create_app`; ``mediamill api`` serves it.
"""
