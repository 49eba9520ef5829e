"""Check outcomes as JUnit XML."""

import xml.etree.ElementTree as ET

from .checks import Outcome


def junit(suite: str, outcomes: list[Outcome], seconds: float) -> ET.ElementTree:
    """JUnit XML: one test case per expectation (class: the case), a `failure` for a value that
    misses its expectation, an `error` when none could be measured (the job failed, the path is
    missing)."""
    counts = {
        "tests": str(len(outcomes)),
        "failures": str(sum(not o.passed and o.error is None for o in outcomes)),
        "errors": str(sum(o.error is not None for o in outcomes)),
        "time": f"{seconds:.3f}",
    }
    root = ET.Element("testsuites", name=suite, **counts)
    group = ET.SubElement(root, "testsuite", name=suite, **counts)
    for outcome in outcomes:
        case = ET.SubElement(group, "testcase", classname=outcome.case, name=outcome.path)
        if outcome.error is not None:
            ET.SubElement(case, "error", message=outcome.error).text = f"expected {outcome.expected}"
        elif not outcome.passed:
            message = f"expected {outcome.expected}, measured {outcome.measured}"
            ET.SubElement(case, "failure", message=message).text = message
    ET.indent(root)
    return ET.ElementTree(root)
