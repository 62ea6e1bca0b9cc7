import sys

from acqsim.cli import main

sys.exit(main())
