import sys

from shipper.cli.main import main

sys.exit(main())
