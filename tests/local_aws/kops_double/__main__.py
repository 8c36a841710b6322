"""python -m tests.local_aws.kops_double ... (what tests/local_aws/bin/kops runs)."""
import sys

from tests.local_aws.kops_double.cli import main

sys.exit(main())
