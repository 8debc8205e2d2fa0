"""The Makegood worker process (the same as `makegood worker`).

python worker.py              # against TEMPORAL_ADDRESS (default localhost:7233)
python worker.py --embedded   # the dev server and the intake API too (`make run`)
python worker.py --api        # worker and intake API against an existing server
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from makegood.serve import serve


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The Makegood worker.")
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="start the local Temporal dev server (SQLite file, web UI) and the intake API as well",
    )
    parser.add_argument(
        "--api",
        action="store_true",
        help="serve the intake API from this process (on by --embedded)",
    )
    parser.add_argument("--no-api", action="store_true", help="with --embedded: no API")
    args = parser.parse_args(argv)
    api = args.api or (args.embedded and not args.no_api)
    asyncio.run(serve(embedded=args.embedded, worker=True, api=api))


if __name__ == "__main__":
    main()
