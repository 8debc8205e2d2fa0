"""Makegood: a durable service-recovery engine, one Temporal workflow per case.

The package's rooms, in the direction imports flow (see README "Layout"):
`domain` (pure models, playbooks, policy, wording, the wire contract) <- `workflows` (the
recovery as a thin shell plus stages) and `activities` (one adapter call each) <- `adapters`
(protocols, local SQLite and real SMTP/HTTP providers) <- `api`, `audit`, `cli` and the
processes in `serve`. `workflows/` and `activities/` live at the top of the repository, as the
design card draws them, and are installed as `makegood.workflows` and `makegood.activities`.
"""
