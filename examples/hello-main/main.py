"""hello-main: the smallest service. It defines main() and never calls it itself:
iac detects that (rule root-main.py-main-function) and the runner imports this file and
calls main()."""

import os
import platform


def main():
    who = os.environ.get("HELLO_NAME", "world")
    print(
        f"hello, {who}! (from hello-main on Python {platform.python_version()})",
        flush=True,
    )
    return 0
