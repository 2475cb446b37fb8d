"""The environment variables a report shows, with secrets redacted.

Only variables that change what the suite measures are shown (device
selection, thread counts, the suite's own options, the hub settings). Any
whose name matches a redaction pattern - the same ``environment_table_redact_list``
pytest-html applies to its environment table - is replaced by ``[redacted]``,
and credentials inside URLs (``scheme://user:password@host``) are removed
from every value.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

REDACTED = "[redacted]"

#: names (exact) and prefixes (ending in "_") of the variables a report shows
RELEVANT_VARIABLES = (
    "DINOV3_", "ASCEND_", "ACL_", "HCCL_", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK", "TORCH_", "PYTORCH_", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "HF_", "TRANSFORMERS_", "PYTEST_XDIST_WORKER",
)

#: used where no pytest.ini is read (e.g. the fleet merge); keep in step with pytest.ini
DEFAULT_PATTERNS = (r"(?i).*(token|secret|passw|pwd|api.?key|access.?key|private|credential|auth|cookie|signature).*",)

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def is_secret(name: str, patterns: Iterable[str]) -> bool:
    """True when ``name`` matches one of the patterns (re.match, as pytest-html does)."""
    return any(re.match(pattern, name) for pattern in patterns)


def scrub_url_credentials(value: str) -> str:
    """``https://user:pw@host/x`` -> ``https://[redacted]@host/x``."""
    return _URL_CREDENTIALS.sub(lambda match: f"{match['scheme']}{REDACTED}@", value)


def redact(variables: Mapping[str, str], patterns: Iterable[str]) -> dict[str, str]:
    """A copy with secret-named values replaced and URL credentials removed."""
    patterns = tuple(patterns)
    return {name: REDACTED if is_secret(name, patterns) else scrub_url_credentials(str(value))
            for name, value in variables.items()}


def relevant_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that change what the suite measures, sorted by name (not yet redacted)."""
    def relevant(name: str) -> bool:
        return any(name.startswith(entry) if entry.endswith("_") else name == entry for entry in RELEVANT_VARIABLES)

    return {name: environ[name] for name in sorted(environ) if relevant(name)}
