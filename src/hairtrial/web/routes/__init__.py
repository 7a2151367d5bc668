"""One router per resource; pages render templates, ``/api/...`` returns JSON schemas."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from hairtrial.web.deps import Principal


def render(
    request: Request, name: str, principal: Principal | None, **context: Any
) -> HTMLResponse:
    """Render template `name` with the user, role and CSRF token in its context."""
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request,
        name,
        {
            "user": None if principal is None else principal.user,
            "csrf": None if principal is None else principal.session.csrf,
            **context,
        },
    )
    return response
