"""Dependencies: compatible ranges in pyproject.toml, the exact tested set in constraints.txt that CI uses."""

import os
import re
import tomllib

from binaries import ROOT


def test_dependencies_are_ranges_and_constraints_pin_them():
    project = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for requirement in requirements:
        version_part = requirement.split(";")[0]  # the environment marker may say ==
        assert "==" not in version_part, f"{requirement}: pyproject.toml states ranges; pins go in constraints.txt"
    pins = {}
    for line in open(os.path.join(ROOT, "constraints.txt")):
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line {line!r} is not an exact pin"
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    for requirement in requirements:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!;\[ ]", requirement)[0].lower())
        if "platform_machine != 'x86_64'" not in requirement:  # the CPU wheel is tested, not this one
            assert name in pins, f"{name} has no pin in constraints.txt"
    assert "-c constraints.txt" in open(os.path.join(ROOT, ".ci", "run")).read()


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## Run the tests", 1)[1]
    command = re.search(r"```\n(.+?)\n```", section, re.S).group(1).strip()
    assert command.startswith(".venv/bin/python -m pytest"), command
    ci_lines = [line.strip() for line in open(os.path.join(ROOT, ".ci", "run"))]
    assert command in ci_lines, f"README's test command {command!r} is not a line of .ci/run"
