"""`python -m ivr.controller` = `hotline ivr`."""

import sys

from hotline.cli import main

sys.exit(main(["ivr", *sys.argv[1:]]))
