"""POST/GET /v1/keys and DELETE /v1/keys/{keyId}: key management for admin keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from energy_ingest.auth.keys import Scope, public_id, split_token
from energy_ingest.errors import FieldProblem, NotFound, ValidationFailed
from energy_ingest.keys import service
from energy_ingest.keys.schemas import CreatedKey, CreateKey, KeyInfo
from energy_ingest.readings import DeviceKind
from energy_ingest.web.dependencies import AdminConnections, AdminKey, EngineDep, ReadConn
from energy_ingest.web.http import json_response, read_json_body
from energy_ingest.wire import problems_from

router = APIRouter(prefix="/v1/keys", tags=["keys"])

# Every handler takes the key first: FastAPI resolves dependencies in order, so a request
# without the admin scope is refused before it borrows a database connection.


@router.post(
    "",
    status_code=201,
    response_model=CreatedKey,
    responses={422: {"description": "A field breaks a rule (named in the answer)."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateKey"}}},
        }
    },
)
async def create_key(
    _: AdminKey, request: Request, engine: EngineDep, connect: AdminConnections
) -> Response:
    body = await read_json_body(
        request, engine.settings, max_bytes=engine.settings.max_single_body_bytes
    )
    try:
        command = CreateKey.model_validate(body)
    except ValidationError as error:
        raise ValidationFailed(problems_from(error)) from None
    try:
        async with connect() as connection:  # only now: the body is read and valid
            key, token = await service.create_key(
                connection,
                {Scope(scope) for scope in command.scopes},
                device_id=command.device_id,
                device_kind=DeviceKind(command.device_kind) if command.device_kind else None,
                name=command.name,
                expires_at=command.expires_at,
            )
    except service.InvalidKeyRequest as problem:
        raise ValidationFailed(
            [FieldProblem(field=problem.field, rule=problem.rule, message=str(problem))]
        ) from None
    return json_response({**key.as_json(), "key": token}, 201)


@router.get("", response_model=list[KeyInfo])
async def list_keys(_: AdminKey, connection: ReadConn) -> Response:
    return json_response([key.as_json() for key in await service.list_keys(connection)])


@router.delete(
    "/{keyId}",
    response_model=KeyInfo,
    responses={404: {"description": "No key has this id."}},
)
async def revoke_key(
    _: AdminKey, keyId: str, engine: EngineDep, connect: AdminConnections
) -> Response:
    # Only the public id: a whole key in a URL ends up in proxies' logs (ours redact it).
    # Revoking it anyway would teach people to paste secrets into URLs.
    if split_token(keyId) is not None:
        raise ValidationFailed(
            [
                FieldProblem(
                    field="keyId",
                    rule="not_a_whole_key",
                    message="this is a whole key, secret included: pass the key id only (its "
                    "first part, the 12 hex digits after eie_); nothing was revoked",
                )
            ]
        )
    prefix = public_id(keyId)
    if prefix is None or prefix != keyId:
        raise ValidationFailed(
            [
                FieldProblem(
                    field="keyId", rule="pattern", message="must be a key id (12 hex digits)"
                )
            ]
        )
    async with connect() as connection:
        key = await service.revoke_key(connection, prefix)
    if key is None:
        raise NotFound(f"no key has the id {prefix}")
    engine.keys.forget(prefix)  # this process at once; the others through the notification
    return json_response(key.as_json())
