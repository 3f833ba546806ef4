"""Citizen and staff authentication, the citizen's profile, staff lookups of citizens."""
from sanic import Blueprint, Request
from sanic.response import empty

from backend.accounts import citizens, data_rights, personal_data, schemas, sessions, staff
from backend.accounts.permissions import PII_READ_ROLES
from backend.kit.auth import authenticated
from backend.kit.http import client_ip, json_response, language_of, parse_body, parse_query, path_id
from backend.kit.openapi import doc

bp = Blueprint("accounts", url_prefix="/api/v1")


@bp.post("/auth/sms-code")
@doc(summary="Send a 6-digit login code by SMS (1 a minute, 5 an hour, 10 a day per phone)", tag="auth",
     body=schemas.SmsCodeRequest, response=schemas.SmsCodeSent, status=202, errors=(429, 503))
async def request_sms_code(request: Request):
    body = parse_body(request, schemas.SmsCodeRequest)
    sent = await citizens.request_sms_code(request.app.ctx.rt, phone=body.phone, client_ip=client_ip(request),
                                           language=language_of(request))
    return json_response(sent, status=202)


@bp.post("/auth/login")
@doc(summary="Log in with phone + SMS code; a new phone becomes a new citizen (is_new)", tag="auth",
     body=schemas.SmsLoginRequest, response=schemas.CitizenLogin, errors=(429, 503))
async def login(request: Request):
    body = parse_body(request, schemas.SmsLoginRequest)
    tokens = await citizens.login_with_sms_code(request.app.ctx.rt, phone=body.phone, code=body.code,
                                                client_ip=client_ip(request))
    return json_response(tokens)


@bp.post("/auth/refresh")
@doc(summary="Trade a refresh token for a new token pair (each refresh token works once)", tag="auth",
     body=schemas.RefreshRequest, response=schemas.TokenPair, errors=(401, 403))
async def refresh(request: Request):
    body = parse_body(request, schemas.RefreshRequest)
    return json_response(await sessions.refresh_session(request.app.ctx.rt, refresh_token=body.refresh_token))


@bp.post("/auth/logout")
@doc(summary="End the session the refresh token belongs to; its access tokens stop at once", tag="auth",
     body=schemas.RefreshRequest, status=204)
async def logout(request: Request):
    body = parse_body(request, schemas.RefreshRequest)
    await sessions.logout(request.app.ctx.rt, refresh_token=body.refresh_token)
    return empty()


@bp.get("/me")
@doc(summary="My profile, personal data masked", tag="me", response=schemas.CitizenProfile, secured=True,
     errors=(404,))
@authenticated(kind="citizen")
async def get_me(request: Request):
    return json_response(await citizens.get_profile(request.app.ctx.rt, citizen_id=request.ctx.principal.id))


@bp.patch("/me")
@doc(summary="Change my name, ID number (checked: GB 11643) or preferred language (zh/mn/en)", tag="me",
     body=schemas.ProfilePatch, response=schemas.CitizenProfile, secured=True, errors=(404, 409))
@authenticated(kind="citizen")
async def patch_me(request: Request):
    patch = parse_body(request, schemas.ProfilePatch)
    profile = await citizens.update_profile(request.app.ctx.rt, citizen_id=request.ctx.principal.id, patch=patch)
    return json_response(profile)


@bp.delete("/me")
@doc(summary="Close my account (注销): phone, name, ID number and WeChat logins are erased, every session "
             "ends at once; the account id stays for the records the law keeps. Cannot be undone",
     tag="me", query=schemas.CloseAccountQuery, status=204, secured=True, errors=(404,))
@authenticated(kind="citizen")
async def close_me(request: Request):
    parse_query(request, schemas.CloseAccountQuery)
    await data_rights.close_account(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                    request_id=request.ctx.request_id)
    return empty()


@bp.get("/me/export")
@doc(summary="A copy of my data (PIPL art. 45): profile unmasked, WeChat bindings, sessions, and which "
             "staff looked up or read my personal data; 3 an hour, audited", tag="me",
     response=schemas.CitizenExport, secured=True, errors=(404, 429))
@authenticated(kind="citizen")
async def export_me(request: Request):
    export = await data_rights.export_account(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                              request_id=request.ctx.request_id)
    return json_response(export, headers={"Cache-Control": "no-store"})


@bp.post("/staff/login")
@doc(summary="Staff login with username and password", tag="staff", body=schemas.StaffLoginRequest,
     response=schemas.TokenPair, errors=(401, 403, 429, 503))
async def staff_login(request: Request):
    body = parse_body(request, schemas.StaffLoginRequest)
    tokens = await staff.login_staff(request.app.ctx.rt, username=body.username, password=body.password,
                                     client_ip=client_ip(request))
    return json_response(tokens)


@bp.get("/staff/me")
@doc(summary="The logged-in staff member and their scoped roles", tag="staff", response=schemas.StaffProfile,
     secured=True)
@authenticated(kind="staff")
async def staff_me(request: Request):
    return json_response(await staff.get_staff_profile(request.app.ctx.rt, principal=request.ctx.principal))


@bp.post("/staff/citizens/lookup")
@doc(summary="Find a citizen by phone in a hall you work in (the phone goes in the body, never in a URL "
             "or log); audited, and lets the hall's staff read the citizen's data for a while",
     tag="staff", body=schemas.CitizenLookup, response=schemas.CitizenProfile, secured=True, errors=(404, 429))
@authenticated(kind="staff", roles=PII_READ_ROLES)
async def lookup_citizen(request: Request):
    body = parse_body(request, schemas.CitizenLookup)
    found = await personal_data.find_citizen_by_phone(
        request.app.ctx.rt, principal=request.ctx.principal, phone=body.phone, hall=body.hall,
        request_id=request.ctx.request_id)
    return json_response(found)


@bp.get("/staff/citizens/<citizen_id:int>/pii")
@doc(summary="A citizen's unmasked personal data, for staff of a hall the citizen has business with, "
             "with a stated reason; every read is audited", tag="staff",
     query=schemas.PiiReadQuery, response=schemas.CitizenPii, secured=True, errors=(404, 429),
     path_parameters={"citizen_id": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}})
@authenticated(kind="staff", roles=PII_READ_ROLES)
async def read_citizen_pii(request: Request, citizen_id: int):
    query = parse_query(request, schemas.PiiReadQuery)
    pii = await personal_data.read_citizen_pii(
        request.app.ctx.rt, principal=request.ctx.principal, citizen_id=path_id(citizen_id, "citizen_not_found"),
        hall=query.hall, reason=query.reason, request_id=request.ctx.request_id)
    return json_response(pii, headers={"Cache-Control": "no-store"})
