"""``python -m fastsd`` runs the command line."""
from .cli import console

console()
