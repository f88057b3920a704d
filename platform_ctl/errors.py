"""One exception hierarchy; the CLI boundary turns these into a message and an exit code."""

from __future__ import annotations


class PlatformCtlError(Exception):
    """Base of every error platform-ctl reports to a user.

    Attributes:
        message: one line saying what failed and what to do next.
        exit_code: the process exit code the CLI uses; each subclass sets its own (a usage error
            is :class:`UsageError`, exit 2), so no caller writes a literal exit code.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(PlatformCtlError):
    """The command cannot run as given: an option, argument or confirmation is wrong or missing.

    The message says what to give instead.
    """

    exit_code = 2


class SpecError(PlatformCtlError):
    """The environment spec is invalid: file, key path and what is allowed."""

    exit_code = 2

    def __init__(self, path: object, key: str, detail: str) -> None:
        self.path = str(path)
        self.key = key
        self.detail = detail
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + detail)


class PreflightError(PlatformCtlError):
    """A tool, credential or resource the run needs is missing."""

    exit_code = 3


class InfrastructureError(PlatformCtlError):
    """Creating, reading or destroying hosts failed."""

    exit_code = 4


class PlaybookFailed(PlatformCtlError):
    """An Ansible play failed on at least one host."""

    exit_code = 5

    def __init__(self, playbook: str, failures: list[tuple[str, str, str]], log: str) -> None:
        self.playbook = playbook
        self.failures = failures
        self.log = log
        first = "; ".join(f"{host}: {task}: {msg}" for host, task, msg in failures[:3]) or "no failed task recorded"
        super().__init__(f"playbook {playbook} failed: {first} (full log: {log})")


class VerifyFailed(PlatformCtlError):
    """Post-deploy checks failed."""

    exit_code = 6
