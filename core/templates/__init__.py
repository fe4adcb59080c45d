"""Message templates: definitions, previews, validation, send payloads and the registry.

One import point for the layers; each submodule has one job:
`definition` (parse Meta's template), `values` (parameter values), `fill` (match values
to placeholders), `preview`, `validate`, `payload`, `po` (PO notice parameters) and
`registry` (the synced copy in the database).
"""

from core.templates.definition import (
    TemplateButton,
    TemplateDefinition,
    TemplateDefinitionError,
    placeholders,
)
from core.templates.fill import ParamProblem
from core.templates.payload import TemplateParamsError, build_components, build_template_payload
from core.templates.po import build_po_notice_params, is_po_notice_template
from core.templates.preview import Preview, render_preview
from core.templates.registry import (
    SyncReport,
    definition_of,
    get_template,
    list_templates,
    sync_templates,
    upsert_templates,
)
from core.templates.validate import validate_parameters
from core.templates.values import TemplateParams

__all__ = [
    "ParamProblem",
    "Preview",
    "SyncReport",
    "TemplateButton",
    "TemplateDefinition",
    "TemplateDefinitionError",
    "TemplateParams",
    "TemplateParamsError",
    "build_components",
    "build_po_notice_params",
    "build_template_payload",
    "definition_of",
    "get_template",
    "is_po_notice_template",
    "list_templates",
    "placeholders",
    "render_preview",
    "sync_templates",
    "upsert_templates",
    "validate_parameters",
]
