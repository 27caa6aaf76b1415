"""Write the JSON Schema snapshots and the AsyncAPI document (`make asyncapi`).

A snapshot is only replaced by a compatible schema: an incompatible change to an existing
event type is refused here, so it has to become a new `.vN` type.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from contracts.asyncapi import document

from contracts.schemas import all_schemas, incompatibilities

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
ASYNCAPI = ROOT / "asyncapi.yaml"


def main() -> int:
    SCHEMAS.mkdir(exist_ok=True)
    failed = False
    for ce_type, schema in all_schemas().items():
        path = SCHEMAS / f"{ce_type}.json"
        if path.exists():
            problems = incompatibilities(json.loads(path.read_text()), schema)
            if problems:
                failed = True
                print(f"{ce_type}: incompatible change, make it a new version instead:")
                for problem in problems:
                    print(f"  - {problem}")
                continue
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    ASYNCAPI.write_text(yaml.safe_dump(document(), sort_keys=False, width=100, allow_unicode=True))
    print(f"wrote {len(list(SCHEMAS.glob('*.json')))} schema snapshots and {ASYNCAPI.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
