"""A JSON schema of stack.yml: the fields faas-cli documents (openfaas-keda.md §3.1), no others.

Kept as JSON text in a module so it ships with the package; validate with `jsonschema`.
"""

from __future__ import annotations

import json
from typing import Any

STACK_SCHEMA: dict[str, Any] = json.loads(r"""
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "OpenFaaS stack.yml (the fields documented in openfaas-keda.md §3.1)",
  "type": "object",
  "additionalProperties": false,
  "required": ["version", "provider", "functions"],
  "properties": {
    "version": {"type": "string", "enum": ["1.0"]},
    "provider": {
      "type": "object",
      "additionalProperties": false,
      "required": ["name"],
      "properties": {
        "name": {"const": "openfaas"},
        "gateway": {"type": "string", "pattern": "^https?://"}
      }
    },
    "configuration": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "templates": {
          "type": "array",
          "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "source": {"type": "string"}}
          }
        },
        "copy": {"type": "array", "items": {"type": "string"}}
      }
    },
    "functions": {
      "type": "object",
      "minProperties": 1,
      "propertyNames": {"pattern": "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"},
      "additionalProperties": {"$ref": "#/$defs/function"}
    }
  },
  "$defs": {
    "stringMap": {"type": "object", "additionalProperties": {"type": "string"}},
    "resources": {
      "type": "object",
      "additionalProperties": false,
      "properties": {"memory": {"type": "string"}, "cpu": {"type": "string"}}
    },
    "function": {
      "type": "object",
      "additionalProperties": false,
      "required": ["image"],
      "properties": {
        "lang": {"type": "string"},
        "handler": {"type": "string"},
        "image": {"type": "string", "minLength": 1},
        "fprocess": {"type": "string"},
        "environment": {"$ref": "#/$defs/stringMap"},
        "environment_file": {"type": "array", "items": {"type": "string"}},
        "secrets": {"type": "array", "items": {"type": "string"}},
        "skip_build": {"type": "boolean"},
        "constraints": {"type": "array", "items": {"type": "string", "pattern": "^[^=]+=.*$"}},
        "labels": {"$ref": "#/$defs/stringMap"},
        "annotations": {"$ref": "#/$defs/stringMap"},
        "limits": {"$ref": "#/$defs/resources"},
        "requests": {"$ref": "#/$defs/resources"},
        "readonly_root_filesystem": {"type": "boolean"},
        "build_options": {"type": "array", "items": {"type": "string"}},
        "build_args": {"$ref": "#/$defs/stringMap"},
        "build_secrets": {"$ref": "#/$defs/stringMap"},
        "namespace": {"type": "string"},
        "platforms": {"type": "string"}
      }
    }
  }
}
""")
