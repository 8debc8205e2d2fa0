"""People's pages, served by the intake API: the agent console, the approval desk and the
trends page (a staff session from a token), and the customer's own page (a signed link).

Server-rendered with Jinja2; every action is a plain HTML form that works without JavaScript,
and the vendored htmx (`static/`) only enhances: boosted navigation, a live case page. Every
action is the same call the API route (and so the CLI) makes, guarded by the same role table.
"""
