"""``python -m srcore`` (and ``torchrun -m srcore train ...``)."""

from srcore.cli import run

if __name__ == "__main__":
    run()
