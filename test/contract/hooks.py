"""schemathesis hooks for the contract run (test/contract/schemathesis.test.ts).

The admin API under test is real and drives the real pipeline on the machine's shared Docker
engine, so every project name a generated request uses is given this run's prefix
(IAC_CONTRACT_PREFIX): a POST /destroy of a generated "demo" can then never touch a real
project's containers. A name stays what it was for the check (a DNS label stays a DNS label;
an invalid one is left as it is). Every name used is appended to IAC_CONTRACT_PROJECTS, so the
test can prove afterwards that nothing carrying one of them is left on the engine.
"""

import os
import re

import schemathesis

PREFIX = os.environ["IAC_CONTRACT_PREFIX"]
LOG = os.environ["IAC_CONTRACT_PROJECTS"]
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _scoped(value):
    if not isinstance(value, str) or not DNS_LABEL.fullmatch(value):
        return value
    if value.startswith(PREFIX):
        return value
    scoped = f"{PREFIX}-{value}"[:63].rstrip("-")
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(scoped + "\n")
    return scoped


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, dict) and "project" in case.body:
        case.body["project"] = _scoped(case.body["project"])
    if isinstance(case.query, dict) and "project" in case.query:
        case.query["project"] = _scoped(case.query["project"])
