import sys

from ssassoc.worker.cli import main

sys.exit(main())
