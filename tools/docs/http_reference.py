"""The HTTP API page of `simrec serve`, rendered from the server's own OpenAPI document.

The document is what the running server publishes at /openapi.json. It is produced here from the FastAPI
application without starting it: the routes and their schemas do not depend on the model, so none is loaded.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, cast

from tools.docs.markdown import cell, code, page, prose, table

METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the `simrec serve` application, as it serves it at /openapi.json."""
    from simrec_cli.serve.app import create_app
    from simrec_cli.serve.model import ServedModel
    from simrec_cli.serve.options import ServeOptions

    with tempfile.TemporaryDirectory() as folder:
        model_file = Path(folder) / "model.pth"  # the options check that the model file exists; it is never read
        model_file.touch()
        app = create_app(cast(ServedModel, None), ServeOptions(model_path=model_file))
        return app.openapi()


def openapi_json() -> str:
    """The document as the committed docs/reference/openapi.json holds it."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def schema_anchor(name: str) -> str:
    return f"schema-{name.lower()}"


def type_of(schema: dict[str, Any]) -> str:
    """A short Markdown description of a JSON schema's type: `string`, `array of string`, a link to a schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{schema_anchor(name)})"
    for combiner in ("anyOf", "oneOf"):
        if combiner in schema:
            return " or ".join(dict.fromkeys(type_of(option) for option in schema[combiner]))
    if "enum" in schema:
        return "one of " + ", ".join(code(json.dumps(value)) for value in schema["enum"])
    if "const" in schema:
        return code(json.dumps(schema["const"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "string" and schema.get("format") == "binary":
        return "file"
    if kind == "string" and schema.get("format") == "byte":
        return "base64 string"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    return "null" if kind == "null" else str(kind)


def details(schema: dict[str, Any]) -> str:
    """A field's description for a table cell, with its default and examples when the schema gives them."""
    parts = [prose(schema["description"]).replace("|", "\\|")] if schema.get("description") else []
    if "default" in schema:
        parts.append(f"Default: {code(json.dumps(schema['default']))}.")
    if schema.get("examples"):
        parts.append("Examples: " + ", ".join(code(json.dumps(value)) for value in schema["examples"]) + ".")
    return " ".join(parts)


def fields_table(schema: dict[str, Any]) -> list[str]:
    """An object schema's properties as a table (name, type, required, description)."""
    required = set(schema.get("required", []))
    rows = [
        [code(name), type_of(field), "yes" if name in required else "", details(field)]
        for name, field in schema.get("properties", {}).items()
    ]
    if not rows:
        return [f"Type: {type_of(schema)}.", ""]
    closed = schema.get("additionalProperties") is False
    note = ["Other fields are refused.", ""] if closed else []
    return [*table(["Field", "Type", "Required", "Description"], rows), "", *note]


def request_section(body: dict[str, Any]) -> list[str]:
    lines = ["**Request body**" + (" (required)" if body.get("required") else ""), ""]
    for media_type, content in body.get("content", {}).items():
        lines.extend([f"As `{media_type}`:", "", *fields_table(content.get("schema", {}))])
        if "example" in content:
            lines.extend(["```json", json.dumps(content["example"], indent=2), "```", ""])
    return lines


def responses_section(responses: dict[str, Any]) -> list[str]:
    rows = []
    for status, response in responses.items():
        content = response.get("content", {})
        bodies = [f"{code(media)}: {type_of(item.get('schema', {}))}" for media, item in content.items()]
        headers = ", ".join(code(name) for name in response.get("headers", {}))
        rows.append([code(status), cell(response.get("description", "")), "<br>".join(bodies), headers])
    return ["**Responses**", "", *table(["Status", "Meaning", "Body", "Headers"], rows), ""]


def operation_section(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"## `{method.upper()} {path}`", "", prose(operation.get("summary", "")), ""]
    if operation.get("description"):
        lines.extend([prose(operation["description"]), ""])
    for parameter in operation.get("parameters", []):
        where, name = parameter.get("in", ""), parameter.get("name", "")
        lines.append(f"- {where} parameter {code(name)}: {type_of(parameter.get('schema', {}))}. {details(parameter)}")
    if operation.get("parameters"):
        lines.append("")
    if "requestBody" in operation:
        lines.extend(request_section(operation["requestBody"]))
    return lines + responses_section(operation.get("responses", {}))


def http_reference() -> str:
    document = openapi_document()
    body: list[str] = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                body.extend(operation_section(path, method, item[method]))
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        body.extend(["## Schemas", ""])
        for name, schema in schemas.items():
            body.extend([f"### {name} {{ #{schema_anchor(name)} }}", ""])
            if schema.get("description"):
                body.extend([prose(schema["description"]), ""])
            body.extend(fields_table(schema))
    info = document.get("info", {})
    intro = (
        f"{prose(info.get('description', ''))}\n\n"
        "The routes of `simrec serve` (see [Serving](../serving.md)). A running server publishes the same "
        "document at `/openapi.json` and a page of it at `/docs`; the document is also here: "
        "[openapi.json](openapi.json)."
    )
    return page("HTTP API", "the OpenAPI document of simrec_cli/serve/app.py", intro, body)
