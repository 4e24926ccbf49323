#!/usr/bin/env python3
"""The JSON Schema for editors (schema/fields.schema.json) accepts the
shipped example schema and refuses the mistakes an editor should underline.

Runs with Debian's python3-jsonschema and python3-yaml (scripts/install-deps).
"""
import copy
import json
import sys

import jsonschema
import yaml

ROOT = sys.argv[1] if len(sys.argv) > 1 else "."
with open(f"{ROOT}/schema/fields.schema.json") as f:
    SCHEMA = json.load(f)
jsonschema.Draft202012Validator.check_schema(SCHEMA)
validator = jsonschema.Draft202012Validator(SCHEMA)

with open(f"{ROOT}/examples/fields/customers.yaml") as f:
    example = yaml.safe_load(f)
errors = list(validator.iter_errors(example))
assert not errors, f"the example schema does not validate: {errors[0].message}"


def refused(mutate, why):
    doc = copy.deepcopy(example)
    mutate(doc)
    if not list(validator.iter_errors(doc)):
        raise AssertionError(f"JSON Schema accepted {why}")


refused(lambda d: d.update(version=2), "version 2")
refused(lambda d: d.pop("key"), "a schema without key")
refused(lambda d: d.update(extra=1), "an unknown top-level key")
refused(lambda d: d["classes"]["pii"].update(encrypt="always"), "encrypt: always")
refused(lambda d: d["tables"]["customers"]["fields"]["email"].update(treatment="rot13"),
        "treatment rot13")
refused(lambda d: d["tables"]["customers"]["fields"]["email"].pop("class"), "a field without class")
refused(lambda d: d["tables"]["customers"].pop("id_column"), "a table without id_column")
refused(lambda d: d.update(dataset="has space"), "a dataset name with a space")
print("fields.schema.json: the example validates; 8 mistakes refused")
