"""The `greeter` console script: prints a greeting and exits 0."""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="greeter", description="Print a greeting.")
    parser.add_argument("--name", default=os.environ.get("GREETER_NAME", "world"))
    args = parser.parse_args(argv)
    print(f"greetings, {args.name}! (greeter-cli console script)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
