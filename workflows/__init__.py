"""Workflow definitions (installed as `makegood.workflows`). No I/O here: activities do it.

`recovery.RecoveryWorkflow` is the shell of a case; its stages are `case` (what they share),
`conversation`, `oversight`, `settlement`, `aftercare` and `remedies/`; `callback` is the
call-back child workflow. They import only the domain (and each other).
"""
