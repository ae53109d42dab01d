"""A module that no worker may import just because a row names it.

Importing it writes the file named by FORBIDDEN_IMPORT_MARKER.
"""

import os

marker = os.environ.get("FORBIDDEN_IMPORT_MARKER")
if marker:
    with open(marker, "w") as file:
        file.write("imported")


def anything() -> None:
    """Never called."""
