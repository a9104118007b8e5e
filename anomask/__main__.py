import sys

from anomask.cli import main

sys.exit(main())
