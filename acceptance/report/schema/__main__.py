"""Write the whole report schema to benchmark_report.schema.json (``--check``: exit 1 when it is not current).

    python -m acceptance.report.schema           # after changing the frame or a section type
    python -m acceptance.report.schema --check
"""

from __future__ import annotations

import sys

from . import SCHEMA_FILE, schema_text


def main(argv: list[str]) -> int:
    text = schema_text()
    current = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.is_file() else ""
    if "--check" in argv:
        if current != text:
            print(f"{SCHEMA_FILE} is not current: run python -m acceptance.report.schema", file=sys.stderr)
            return 1
        print(f"{SCHEMA_FILE} is current")
        return 0
    SCHEMA_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
