"""Job identity: equal canonical specs under the same engine version are the same computation."""

import hashlib
import json

from pydantic import BaseModel


def canonical_json(spec: BaseModel) -> str:
    """The spec with every default filled in, keys sorted, no whitespace."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def spec_hash(spec: BaseModel, engine_version: str) -> str:
    """sha256 of the engine version and the canonical spec."""
    payload = f"{engine_version}\n{canonical_json(spec)}".encode()
    return hashlib.sha256(payload).hexdigest()
