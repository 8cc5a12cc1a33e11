"""The rules the ``risk-regex`` policy uses when none are configured.

Each is a plain JSON object, exactly as it appears in the policy document
(``GET /policies``), so an operator can copy one, change it and ``PUT`` it back.
Patterns are RE2 syntax and see one added line at a time, without its ``+``.
``docs/policies.md`` lists them; a test keeps that table in step with this one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_RULES"]


def _sql_formatting() -> str:
    """A string literal that starts an SQL statement and is then formatted or concatenated."""
    forms = []
    for q in ('"', "'"):
        sql = rf"\s*(?i:select\s[^{q}\n]*\bfrom|insert\s+into|update\s+\w+\s+set|delete\s+from)\b"
        forms.append(rf"\b(?:[rR]?[fF]|[fF][rR]){q}{sql}[^{q}\n]*\{{")  # f"SELECT ... {x}"
        forms.append(rf"{q}{sql}[^{q}\n]*{q}\s*(?:%\s*[\w(]|\+\s*[\w(]|\.format\s*\()")
    sql = r"\s*(?i:select\s[^`\n]*\bfrom|insert\s+into|update\s+\w+\s+set|delete\s+from)\b"
    forms.append(rf"`{sql}[^`\n]*\$\{{")  # `SELECT ... ${x}`
    return "|".join(forms)


DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "private-key",
        "pattern": r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        "severity": "deny",
        "message": "adds a private key",
    },
    {
        "id": "aws-access-key-id",
        "pattern": r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        "severity": "deny",
        "message": "adds an AWS access key id",
    },
    {
        "id": "aws-secret-access-key",
        "pattern": r"""(?i)aws_?secret_?access_?key["']?\s*[:=]\s*["']?[A-Za-z0-9/+=]{40}\b""",
        "severity": "deny",
        "message": "adds an AWS secret access key",
    },
    {
        "id": "github-token",
        "pattern": r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})\b",
        "severity": "deny",
        "message": "adds a GitHub token",
    },
    {
        "id": "slack-token",
        "pattern": r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        "severity": "deny",
        "message": "adds a Slack token",
    },
    {
        "id": "secret-assignment",
        "pattern": (
            r"""(?i)\b[\w.-]*(?:api[_-]?key|secret|token|passw(?:or)?d|credentials?)[\w.-]*["']?"""
            r"""\s*(?::=|=>|[:=])\s*["'][^"'\s${}<>]{16,}["']"""
        ),
        "severity": "warn",
        "message": "assigns a long literal to a secret-looking name (a hard-coded credential?)",
    },
    {
        "id": "rm-rf-root",
        "pattern": (
            r"\brm\s+(?:-[\w-]+\s+)*-[\w-]*[rR][\w-]*\s+(?:-[\w-]+\s+)*"
            r"""["']?(?:/|/\*|~/?|\$HOME/?|\$\{HOME\}/?)["']?(?:[\s;&|)]|$)"""
        ),
        "severity": "deny",
        "message": "recursively deletes the root or home directory",
    },
    {
        "id": "curl-pipe-shell",
        "pattern": r"\b(?:curl|wget)\b[^|\n]*\|\s*(?:sudo\s+)?(?:ba|z|da|k|fi)?sh\b",
        "severity": "warn",
        "message": "pipes a download straight into a shell",
    },
    {
        "id": "eval-input",
        "pattern": (
            r"\b(?:eval|exec)\s*\(\s*(?:input\s*\(|raw_input\s*\(|sys\.argv|request\.|req\."
            r"|params\b|os\.environ|process\.argv|location\.|document\.)"
        ),
        "severity": "deny",
        "message": "evaluates input as code",
    },
    {
        "id": "tls-verify-disabled",
        "pattern": (
            r"\bverify\s*=\s*False\b|\brejectUnauthorized\s*:\s*false\b"
            r"|\bInsecureSkipVerify\s*:\s*true\b|\bCURLOPT_SSL_VERIFY(?:PEER|HOST)\s*,\s*(?:0|(?i:false))\b"
            r"""|\bNODE_TLS_REJECT_UNAUTHORIZED\s*=\s*["']?0|\bssl\._create_unverified_context\b"""
            r"|\bcheck_hostname\s*=\s*False\b"
        ),
        "severity": "warn",
        "message": "turns off TLS certificate verification",
    },
    {
        "id": "chmod-777",
        "pattern": r"\bchmod\s+(?:-\w+\s+)*(?:0?777|a\+rwx|ugo\+rwx)\b|\bchmod\s*\([^)]*\b0o?777\b",
        "severity": "warn",
        "message": "makes a file writable by everyone",
    },
    {
        "id": "dotenv-file",
        "scope": "path",
        "pattern": r"(?:^|/)\.env(?:\.(?:local|dev|development|prod|production|staging|test))?$",
        "severity": "deny",
        "message": "commits a .env file (these hold local secrets)",
    },
    {
        "id": "pickle-loads",
        "pattern": r"\b(?:pickle|cPickle|_pickle|dill|joblib|marshal)\.loads?\s*\(",
        "severity": "warn",
        "message": "unpickles data, which runs code if the data is not trusted",
    },
    {
        "id": "subprocess-shell",
        "pattern": r"\bshell\s*=\s*True\b",
        "severity": "warn",
        "message": "runs a command through the shell (shell=True): injection risk",
    },
    {
        "id": "sql-string-format",
        "pattern": _sql_formatting(),
        "severity": "warn",
        "message": "builds SQL with string formatting; use query parameters",
    },
)
