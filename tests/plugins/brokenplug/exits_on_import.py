"""A plugin module that ends the process on import, as a script-style module does when it
calls ``sys.exit()`` on a missing licence or dependency."""

import sys

sys.exit("fancydsp: licence key not found")
