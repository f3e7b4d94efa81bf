import sys

from alta.cli import main

sys.exit(main())
