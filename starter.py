"""The operator's command line, `makegood` (installed as a console script of that name).

python starter.py open examples/tickets/s1-missing-car.json
python starter.py status case-T-1001
"""

from makegood.cli.main import main

if __name__ == "__main__":
    main()
