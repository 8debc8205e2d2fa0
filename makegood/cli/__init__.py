"""The `makegood` command: the operator's CLI and the processes (worker, api, dev)."""
