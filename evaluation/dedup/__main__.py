"""`python -m evaluation.dedup generate|evaluate|tune ...`"""

import sys

from evaluation.dedup.cli import main

sys.exit(main())
