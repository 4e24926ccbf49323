#!/usr/bin/env python3
"""The JSON Schema for editors (schema/fields.schema.json) accepts the
shipped example schema and tests/schema/searchable.yaml (deterministic
fields, cardinality, blind indexes) and refuses the mistakes an editor
should underline.

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
base_mistakes = 8

# Searchable fields: deterministic treatment, cardinality, blind indexes.
with open(f"{ROOT}/tests/schema/searchable.yaml") as f:
    searchable = yaml.safe_load(f)
errors = list(validator.iter_errors(searchable))
assert not errors, f"tests/schema/searchable.yaml does not validate: {errors[0].message}"
example = searchable
fields = lambda d: d["tables"]["customers"]["fields"]
email_index = lambda d: fields(d)["email"]["indexes"][0]
compound = lambda d: d["tables"]["customers"]["indexes"][0]


def accepted(mutate, why):
    doc = copy.deepcopy(example)
    mutate(doc)
    errors = list(validator.iter_errors(doc))
    if errors:
        raise AssertionError(f"JSON Schema refused {why}: {errors[0].message}")


# What keyward's parser accepts, at the edges.
accepted(lambda d: email_index(d).update(bits=1), "bits 1")
accepted(lambda d: email_index(d).update(bits=32), "bits 32")
accepted(lambda d: email_index(d).pop("bits"), "an index without bits (auto)")
accepted(lambda d: email_index(d).update(transform="last:1024"), "last:1024")
accepted(lambda d: email_index(d).update(transform=["first:1", "normalize:NFKC"]),
         "first:1 then normalize:NFKC")
accepted(lambda d: fields(d)["email"].update(cardinality=1), "cardinality 1")
accepted(lambda d: compound(d).update(fields=["last_name", "birth_year", "email"]),
         "a compound index over three fields")

searchable_mistakes = 0


def refused_index(mutate, why):
    global searchable_mistakes
    refused(mutate, why)
    searchable_mistakes += 1


refused_index(lambda d: email_index(d).update(bits=40), "bits 40")
refused_index(lambda d: email_index(d).update(bits=0), "bits 0")
refused_index(lambda d: email_index(d).update(bits="wide"), "bits: wide")
refused_index(lambda d: email_index(d).update(transform=["trim", "uppercase"]),
              "an unknown transform in a list")
refused_index(lambda d: email_index(d).update(transform="soundex"), "an unknown transform")
refused_index(lambda d: email_index(d).update(transform="last:0"), "last:0")
refused_index(lambda d: email_index(d).update(transform="first:1025"), "first:1025")
refused_index(lambda d: email_index(d).update(transform="last:04"), "last:04")
refused_index(lambda d: email_index(d).pop("name"), "an index without a name")
refused_index(lambda d: email_index(d).update(name="email-idx"), "an index name with '-'")
refused_index(lambda d: email_index(d).update(name="1email"), "an index name starting with a digit")
refused_index(lambda d: email_index(d).update(name="e" * 49), "an index name of 49 characters")
refused_index(lambda d: email_index(d).update(fields=["email", "name"]),
              "fields on a one-field index")
refused_index(lambda d: email_index(d).update(unique=True), "an unknown key in an index")
refused_index(lambda d: fields(d)["email"].update(indexes={"name": "x"}), "indexes not a list")
refused_index(lambda d: fields(d)["country"].update(indexes=[{"name": "country_idx"}]),
              "an index on a plaintext field")
refused_index(lambda d: fields(d)["email"].update(cardinality=0), "cardinality 0")
refused_index(lambda d: fields(d)["email"].update(cardinality="many"), "cardinality: many")
refused_index(lambda d: compound(d).update(fields=["last_name"]), "a compound index of one field")
refused_index(lambda d: compound(d).update(fields=["last_name", "last_name"]),
              "a compound index listing a field twice")
refused_index(lambda d: compound(d).pop("fields"), "a compound index without fields")
refused_index(lambda d: compound(d).update(bits=33), "a compound index of 33 bits")
refused_index(lambda d: compound(d).update(transform=["lowercase", "rot13"]),
              "a compound index with an unknown transform")
print(f"fields.schema.json: the examples validate; {base_mistakes + searchable_mistakes} "
      f"mistakes refused ({searchable_mistakes} in searchable fields)")
