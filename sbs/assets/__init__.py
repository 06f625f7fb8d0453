"""Templates, static files, translations and shipped data, found through the package.

In a checkout these are links to the top-level folders (templates/, static/, locale/,
data/); a wheel carries the files themselves, so a non-editable install finds them here too.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
LOCALE = ROOT / "locale"
DATA = ROOT / "data"
