"""The web: the Flask app, the chat widget's routes, the JSON API, the article pages, health and metrics."""
