# Generates openapi.json (the OpenAPI 3.1 document served at /api/openapi.json):
#   python3 crates/api/openapi.py > crates/api/openapi.json
# tests/api.rs checks that it documents exactly the routes the router serves; tests/openapi.rs
# that it is this script's output, and drives every route into every status it documents,
# validating each real response (and each request built from ehr_api::types) against it.
# The schemas below mirror crates/api/src/types.rs: change both together.
import json
b256_early = {"type": "string", "pattern": "^0x[0-9a-f]{64}$"}
ATTACHMENT_TYPES = ["application/pdf", "image/jpeg", "image/png", "image/heic", "application/dicom"]
FILE_TYPES = {t: {"schema": {"type": "string", "contentMediaType": t}} for t in ATTACHMENT_TYPES}
def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def err(desc): return {"description": desc, "content": {"application/json": {"schema": ref("Error")}}}
def ok(desc, schema, status="200"): return {status: {"description": desc, "content": {"application/json": {"schema": schema}}}}
E = {
 "400": err("`invalid_input` (names the `field`) or `invalid_record` (lists `errors`)"),
 "401": err("`unauthenticated`: no, an unknown or an expired bearer token"),
 "403": err("`forbidden`: this role may not do this"),
 "404": err("`not_found`"),
 "409": err("`conflict`: e.g. the username is taken"),
 "413": err("`payload_too_large`: body over 1 MiB"),
 "415": err("`unsupported_media_type`: the body must be `application/json`"),
 "429": {"description": "`rate_limited`; `Retry-After` says when to try again", "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}, "content": {"application/json": {"schema": ref("Error")}}},
 "500": err("`internal`: \"internal error\" (the cause is logged on the server, never sent)"),
 "503": err("`nodes_unavailable`: too few storage or custodian nodes answer; `funding_budget_spent` (with `Retry-After`): sign-ups are paused, this hour's budget for paying new accounts' gas on a JSON-RPC chain is spent; `upload_pending`: the record's transaction was sent but not mined yet — the record appears once it is; `starting` (with `Retry-After`): the server has just started and waits for its nodes"),
}
GONE = err("`erased`: the patient deleted their account and every record of theirs was erased (keys and blocks destroyed): nobody reads it again; the access log stays")
def errs(*codes): return {c: {"$ref": f"#/components/responses/Status{c}"} for c in codes}
AUTH = [{"bearer": []}]
def body(schema, desc=None):
    b = {"required": True, "content": {"application/json": {"schema": schema}}}
    if desc: b["description"] = desc
    return b
def op(opid, summary, responses, auth=True, req=None, params=None, desc=None, tags=None):
    o = {"operationId": opid, "summary": summary, "responses": responses}
    if desc: o["description"] = desc
    o["security"] = AUTH if auth else []
    if req: o["requestBody"] = req
    if params: o["parameters"] = params
    if tags: o["tags"] = tags
    return o
def merge(*ds):
    out = {}
    for d in ds: out.update(d)
    return out
def pathparam(name, desc): return {"name": name, "in": "path", "required": True, "description": desc, "schema": {"type": "integer", "format": "int64", "minimum": 1}}

COMMON = ("400", "401", "413", "415", "500")
userparam = {"name": "username", "in": "path", "required": True, "description": "The provider's username", "schema": {"type": "string"}}
paths = {
 "/api/session": {
  "post": op("login", "Sign in", merge(ok("A bearer token and who it belongs to", ref("Session")), errs("400", "413", "415", "429", "500"), {"401": err("`invalid_credentials`: username or password wrong (which one is not said); `totp_required`: the account turned on two-factor and no `code` was given; `invalid_totp`: the code is wrong or used already"), "403": err("`forbidden`: the account is disabled (the admin can enable it)")}),
             auth=False, req=body(ref("Login")), tags=["sessions"],
             desc="Throttled per username and per client IP: after 5 failures each further attempt is refused for a doubling delay (30 s up to 15 min). A wrong two-factor code counts as a failure."),
  "delete": op("logout", "Sign out (revokes the token)", merge({"204": {"description": "Signed out"}}, errs("401")), tags=["sessions"]),
 },
 "/api/me": {"get": op("me", "Who the token belongs to", merge(ok("The session's user", ref("Me")), errs("401", "500")), tags=["sessions"])},
 "/api/me/password": {"post": op("changePassword", "Change your password (any role)", merge({"204": {"description": "Changed: the keystore re-encrypted under the new password (the same key, so the address and every record and grant stay); every other session of the account ended, this one kept"}}, errs("400", "401", "413", "415", "429")),
             req=body(ref("PasswordChange")), tags=["accounts"],
             desc="`current_password` is checked as a login checks it (a wrong one is `invalid_credentials` 401, throttled per account and client: then 429); `new_password` follows the sign-up rules (`invalid_input` with `field` `new_password`).")},
 "/api/me/totp": {
  "post": op("beginTotp", "Start two-factor sign-in (any role): a secret for an authenticator app", merge(ok("The secret, its `otpauth://` URI and that URI's QR code (SVG, drawn by the server); pending until confirmed", ref("TotpSetup")), errs("401"), {"409": err("`conflict`: two-factor is on already (turn it off first)")}), tags=["accounts"],
             desc="Starting again replaces a pending secret. TOTP as RFC 6238 (HMAC-SHA-1, 30-second steps, 6 digits), what every authenticator app makes."),
  "delete": op("disableTotp", "Turn two-factor off: the password and a current code", merge({"204": {"description": "Off: logins need the password alone again"}}, errs("400", "413", "415", "429"), {"401": err("`invalid_credentials`: the password is wrong; `invalid_totp`: the code is wrong or used; `unauthenticated`: no session"), "409": err("`conflict`: two-factor is not on")}),
             req=body(ref("TotpDisable")), tags=["accounts"])},
 "/api/me/totp/confirm": {"post": op("confirmTotp", "Turn two-factor on with a code from the app", merge(ok("On: ten one-time backup codes, shown this once", ref("BackupCodes")), errs("400", "413", "415", "429"), {"401": err("`invalid_totp`: the code does not match the pending secret; `unauthenticated`: no session"), "409": err("`conflict`: no set-up started (`POST /api/me/totp` first)")}),
             req=body(ref("TotpCode")), tags=["accounts"],
             desc="Throttled like a login. From now on `POST /api/session` needs `code`: an app code (each accepted once, within one step of now) or a backup code (each once).")},
 "/api/me/recovery": {"post": op("newRecoveryCode", "A new recovery code (any role): the old one stops working", merge(ok("The new code, shown this once", ref("RecoveryCode")), errs("400", "401", "413", "415", "429")),
             req=body(ref("Password"), "Your current password"), tags=["accounts"],
             desc="`password` is checked as a login checks it (a wrong one is `invalid_credentials` 401, throttled per account and client: then 429). The account keeps a second copy of its key encrypted under the code; the server keeps no copy of the code itself.")},
 "/api/account": {"delete": op("deleteAccount", "Leave (patients): delete your account and erase every record by destroying its keys", merge(ok("The receipt: the records and versions erased, and each node's confirmation", ref("ErasureReceipt")), errs("400", "401", "403", "413", "415", "429", "500"), {"503": err("`nodes_unavailable`: too few nodes answer to collect every record's manifest; nothing was changed")}),
             req=body(ref("Password"), "Your current password"), tags=["accounts"],
             desc="`password` is checked as a login checks it (a wrong one is `invalid_credentials` 401, throttled per account and client: then 429). The chain erases every record (`eraseAccount`: reads are refused from then on, with 410 here; the access log stays); every custodian deletes its key shares and every storage node the records' blocks; then the account, with its keys, is deleted and its sessions end. A node that does not confirm (`confirmed: false`) is asked again every minute, and destroys its part when it comes back before it serves anything. Export first (`GET /api/export`): this cannot be undone.")},
 "/api/export": {"get": op("exportMyData", "Everything held about you (patients): one FHIR R4 Bundle to download", merge({"200": {"description": "A `collection` Bundle (`Content-Disposition: attachment`): every record at every version (`meta.versionId`; each read logged on chain, so the export is in the access log), the grants as `Consent`, the access log as `AuditEvent`", "content": {"application/fhir+json": {"schema": ref("ExportBundle")}}}}, errs("401", "403", "500", "503")), tags=["records"])},
 "/api/me/profile": {
  "get": op("myProfile", "Your directory entry (providers): how patients of every organisation find you", merge(ok("The entry the chain names and the nodes hold", ref("Profile")), errs("401", "403", "500"), {"404": err("`not_found`: no entry on chain (not registered), or no node has it")}), tags=["accounts"]),
  "put": op("updateProfile", "Change your display name and specialty (providers)", merge(ok("The new entry, on the nodes and its digest on chain", ref("Profile")), errs("400", "401", "403", "413", "415", "500", "503")),
             req=body(ref("ProfileUpdate")), tags=["accounts"],
             desc="The new entry is stored on the nodes and its sha2-256 digest put on chain by your own `updateProfile` transaction: every organisation's directory shows it. Each field at most 100 bytes, no control characters (`invalid_input` naming `display_name` or `specialty`); an empty display name is your username. A provider the admin disabled is off the chain: 403.")},
 "/api/recover": {"post": op("recover", "A forgotten password: the recovery code sets a new one, keeping the key", merge(ok("Done: every session of the account ended. The code used is used up; this is the next one, shown this once", ref("RecoveryCode")), errs("400", "413", "415", "429"), {"401": err("`invalid_recovery_code`: the username or the code is wrong, or the account has no code (which is not said)")}),
             auth=False, req=body(ref("Recover")), tags=["accounts"],
             desc="The key stays the same, so the address and every record and grant stay the account's. Throttled like a login (per username and client, and per client). A code that is not 25 letters and digits is `invalid_input` with `field` `recovery_code`; `new_password` follows the sign-up rules (`field` `new_password`).")},
 "/api/providers/{username}/password": {"post": op("resetProviderPassword", "Reset a provider's password (admin): it keeps its key, address and grants",
            merge(ok("The provider; its sessions ended", ref("Account")), errs("400", "401", "403", "404", "413", "415"), {"409": err("`conflict`: the provider's key is not escrowed to the admin yet (made before escrow existed and not signed in since)")}), params=[userparam], req=body(ref("Password"), "The provider's new password"), tags=["accounts"],
            desc="Each provider's key is escrowed to the admin (wrapped with HPKE to a key derived from the admin's own), so only a signed-in admin can do this; the data directory alone opens nothing. The admin hands the new password over; the provider should change it.")},
 "/api/patients": {"post": op("registerPatient", "Patient sign-up", merge(ok("The new patient and their on-chain Patient ID", ref("PatientAccount"), "201"), errs("400", "409", "413", "415", "429", "500")),
             auth=False, req=body(ref("SignUp")), tags=["accounts"],
             desc="Self-service and costly (password hashing, key generation): throttled per client IP (5 at once, then one a minute). Usernames: 3–32 of a–z 0–9 . _ -; passwords: 12 characters to 1,024 bytes. With `keystore` (a keystore v3 file from any Ethereum wallet, which the password decrypts) the account uses that key: `invalid_input` with `field` `keystore` when the password does not decrypt it or it is not one, `conflict` 409 when another account here holds the key.")},
 "/api/me/keystore": {"get": op("keystore", "Your keystore v3 file (patients): your key encrypted under your password, to import into any Ethereum wallet", merge({"200": {"description": "The keystore file (`Content-Disposition: attachment`, named as geth names them)", "content": {"application/json": {"schema": ref("Keystore")}}}}, errs("401", "403")), tags=["accounts"])},
 "/api/providers": {
  "get": op("providers", "The network's provider directory: every provider registered on chain by any organisation, with its checked directory entry (for choosing whom to grant); an admin also sees this server's disabled providers", merge(ok("Providers", {"type": "array", "items": ref("Provider")}), errs("401")), tags=["accounts"]),
  "post": op("addProvider", "Register a medical provider (admin): its account here, its directory entry on the nodes, its registration in this server's organisation on chain", merge(ok("The new provider", ref("Account"), "201"), errs("400", "401", "403", "409", "413", "415", "500")), req=body(ref("NewProvider")), tags=["accounts"]),
 },
 "/api/providers/{username}/disable": {"post": op("disableProvider", "Disable a provider (admin): deregistered on chain, its sessions ended, its logins refused",
            merge(ok("The provider, disabled", ref("Account")), errs("401", "403", "404", "500")), params=[userparam], tags=["accounts"],
            desc="Every grant and break-glass window it holds stops working at once. Nothing but `enable` brings it back (a login does not register a provider). Disabling a disabled provider finishes an interrupted disable.")},
 "/api/providers/{username}/enable": {"post": op("enableProvider", "Enable a provider again (admin): registered on chain, logins allowed",
            merge(ok("The provider, enabled", ref("Account")), errs("401", "403", "404", "500")), params=[userparam], tags=["accounts"],
            desc="The grants patients gave it before work again until they expire or are revoked.")},
 "/api/records": {
  "get": op("myRecords", "The patient's records and their versions", merge(ok("Records", {"type": "array", "items": ref("RecordSummary")}), errs("401", "403", "500")), tags=["records"]),
  "post": op("putRecord", "Store a record (patient): a FHIR R4 Bundle", merge(ok("Stored: sealed, dispersed over the storage nodes and registered on chain", ref("Stored"), "201"), errs("400", "401", "403", "413", "415", "500", "503")),
             req=body(ref("Bundle"), "A FHIR R4 Bundle of type collection or transaction: one Patient, up to 100 Conditions, and Observations, allergies, medications, immunizations, procedures, reports, encounters, practitioners and organizations (see crates/fhir/README.md)."), tags=["records"]),
 },
 "/api/records/form": {"post": op("putForm", "Store a record from the web form's five fields (patient)", merge(ok("Stored", ref("Stored"), "201"), errs("400", "401", "403", "413", "415", "500", "503")), req=body(ref("RecordForm")), tags=["records"])},
 "/api/records/{id}": {
  "get": op("readRecord", "Read a record (owner, or a provider with an active grant); the read is logged on chain first",
            merge(ok("The decrypted record", ref("ReadRecord")), errs("400", "401", "404", "500", "503"), {"403": err("`access_denied`: the contract refused (no grant, expired, revoked)"), "410": GONE}),
            params=[pathparam("id", "Record ID"), {"name": "version", "in": "query", "required": False, "description": "A version (default: the latest)", "schema": {"type": "integer", "minimum": 1}}], tags=["records"]),
  "put": op("updateRecord", "Store a new version of a record (its owner)", merge(ok("Stored", ref("Stored")), errs("400", "401", "403", "404", "413", "415", "500", "503")), req=body(ref("Bundle")), params=[pathparam("id", "Record ID")], tags=["records"]),
 },
 "/api/records/{id}/attachments": {"post": op("attach", "Attach a file to a record (its owner): a PDF, photo or DICOM file, streamed as the request body; the next version lists it",
            merge(ok("Stored: the new version, and the attachment's number in the record", ref("AttachmentStored"), "201"), errs("401", "500", "503"),
                  {"400": err("`invalid_input`: `content_type` (not an allowed type), `body` (the bytes are not of the declared type, fewer or more than `Content-Length`, or the upload broke off), `record_id` (not one of your records)"),
                   "403": err("`forbidden`: only a patient attaches files"),
                   "413": err("`payload_too_large`: over the server's limit (2 GiB unless configured)")}),
            req={"required": True, "description": "The file's bytes, with its type as `Content-Type` (`application/pdf`, `image/jpeg`, `image/png`, `image/heic`, `application/dicom`): checked against the bytes (`%PDF-`, `DICM` at 128, the JPEG, PNG and HEIC signatures) before anything is stored",
                 "content": FILE_TYPES},
            params=[pathparam("id", "Record ID"), {"name": "title", "in": "query", "required": False, "description": "A title to show (e.g. the file's name)", "schema": {"type": "string"}}], tags=["records"],
            desc="Streamed end to end: sealed in 1 MiB segments (STREAM over AES-256-GCM) and dispersed k-of-n as the bytes arrive, so memory stays bounded whatever the size. A failure midway stores nothing. The record's current version is read first (logged on chain).")},
 "/api/records/{id}/attachments/{number}": {"get": op("attachment", "An attachment's bytes (owner, or a provider with an active grant); the read is logged on chain first",
            merge({"200": {"description": "The file, as its stored type; `Content-Disposition: inline` for PDF, JPEG and PNG, `attachment` for anything else", "headers": {"Accept-Ranges": {"schema": {"const": "bytes"}}, "X-Access-Tx": {"schema": b256_early, "description": "The transaction that logged this read"}}, "content": FILE_TYPES},
                   "206": {"description": "The one byte range `Range: bytes=…` asked for (`Content-Range` says which); several ranges get the whole file", "headers": {"Content-Range": {"schema": {"type": "string"}}}, "content": FILE_TYPES},
                   "416": {"description": "`range_not_satisfiable`: the range starts past the end; `Content-Range: bytes */size`", "headers": {"Content-Range": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": ref("Error")}}}},
                  errs("400", "401", "404", "500", "503"), {"403": err("`access_denied`: the contract refused (no grant, expired, revoked)"), "410": GONE}),
            params=[pathparam("id", "Record ID"), pathparam("number", "The attachment's number (from 1, as `attachments` lists it)"), {"name": "version", "in": "query", "required": False, "description": "A version (default: the latest)", "schema": {"type": "integer", "minimum": 1}}], tags=["records"],
            desc="Streamed: each 1 MiB segment is fetched from k nodes (every fragment checked against its CID, a bad one replaced by another node's) and opened before it is sent. Too few good fragments midway ends the response with an error (the connection is cut), never a short file.")},
 "/api/patients/{patient_id}/records": {"get": op("patientRecords", "Every record of a patient this provider may read (provider); each read is logged",
            merge(ok("Records", {"type": "array", "items": ref("ReadRecord")}), errs("400", "401", "500", "503"), {"403": err("`forbidden` (not a provider) or `access_denied` (no record of this patient is open to this provider — the same answer when there is no such patient)"), "410": GONE}),
            params=[pathparam("patient_id", "Patient ID")], tags=["providers"])},
 "/api/shared": {"get": op("shared", "Shared with me: the grants this provider holds now, from patients of any organisation (provider)", merge(ok("Grants held", {"type": "array", "items": ref("Shared")}), errs("401", "403")), tags=["sharing"])},
 "/api/grants": {
  "get": op("grants", "The patient's grants, and every break-glass window open now (`emergency`: until when, why)", merge(ok("Grants", {"type": "array", "items": ref("Grant")}), errs("401", "403", "500")), tags=["sharing"]),
  "post": op("grant", "Grant a provider access to one record or all (patient)", merge(ok("The grant's transaction", ref("Tx"), "201"), errs("400", "401", "403", "413", "415", "500")), req=body(ref("GrantRequest")), tags=["sharing"]),
 },
 "/api/grants/revoke": {"post": op("revoke", "Revoke (patient): with `record_id`, that record's grant and break-glass window; with `record_id: null`, everything the provider holds on the patient's records; effective at the next read", merge(ok("The revocation's transaction", ref("Tx")), errs("400", "401", "403", "413", "415", "500"), {"404": err("`not_found`: there is no such grant to revoke")}), req=body(ref("RevokeRequest")), tags=["sharing"],
            desc="`record_id: null` ends the all-records grant, every record grant and every open break-glass window of that provider in one transaction. A provider may still open a new break-glass afterwards (emergencies override consent): it is a new event, with its own reason, on `GET /api/grants` and in the access log.")},
 "/api/emergency": {"post": op("emergency", "Break-glass access to every record of a patient (provider); logged with the reason",
            merge(ok("The records, marked emergency", {"type": "array", "items": ref("ReadRecord")}), errs("400", "401", "403", "404", "413", "415", "500", "503"), {"410": GONE}), req=body(ref("EmergencyRequest")), tags=["providers"])},
 "/api/access-log": {"get": op("accessLog", "Who read the patient's records, when; every read only a break-glass window allowed is `emergency`, with the window's reason (patient)", merge(ok("Log entries, oldest first", {"type": "array", "items": ref("AccessLogEntry")}), errs("401", "403", "500")), tags=["sharing"])},
 "/api/status": {"get": op("status", "The chain head, the threshold and how many nodes answer (public, at most 5 s old); each node only for the admin (asked now)", merge(ok("Status", ref("Status")), errs("401", "500")), auth=False, tags=["admin"],
            desc="No token: public and cached. An admin's bearer token adds `nodes`. A bad token is 401.")},
 "/api/openapi.json": {"get": op("openapi", "This document", {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}, auth=False, tags=["meta"])},
 "/ipfs/{cid}": {"get": op("block", "One block, as a trustless gateway serves it (ciphertext fragments and manifests)",
            merge({"200": {"description": "The block's bytes", "content": {"application/vnd.ipld.raw": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}}, errs("400", "404", "503")),
            auth=False, params=[{"name": "cid", "in": "path", "required": True, "schema": {"type": "string"}, "description": "A CID (v0 or v1)"},
                                {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["raw"]}, "description": "`raw`, or send `Accept: application/vnd.ipld.raw`"}],
            tags=["gateway"])},
}
addr = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "description": "Ethereum address (EIP-55)"}
b256 = {"type": "string", "pattern": "^0x[0-9a-f]{64}$"}
u64 = {"type": "integer", "format": "int64", "minimum": 0}
u32 = {"type": "integer", "format": "int32", "minimum": 1}
role = {"type": "string", "enum": ["patient", "provider", "admin"]}
def obj(props, required=None, desc=None, extra=False):
    o = {"type": "object", "properties": props, "required": required if required is not None else list(props), "additionalProperties": extra}
    if desc: o["description"] = desc
    return o
nullable = lambda s: {"oneOf": [s, {"type": "null"}]}
schemas = {
 "Error": obj({"error": {"type": "string", "enum": ["invalid_input", "invalid_record", "unauthenticated", "invalid_credentials", "invalid_recovery_code", "totp_required", "invalid_totp", "forbidden", "access_denied", "not_found", "erased", "conflict", "payload_too_large", "unsupported_media_type", "range_not_satisfiable", "rate_limited", "nodes_unavailable", "funding_budget_spent", "upload_pending", "starting", "internal"]},
               "message": {"type": "string"},
               "field": {"type": "string", "description": "invalid_input: the field (e.g. `username`, `patient_id`, `body`)"},
               "errors": {"type": "array", "items": obj({"path": {"type": "string"}, "message": {"type": "string"}}), "description": "invalid_record: each broken field (FHIR path or form field) and rule"},
               "retry_after": {"type": "integer", "description": "rate_limited: seconds"}}, ["error", "message"]),
 "SignUp": obj({"username": {"type": "string"}, "password": {"type": "string", "format": "password"}, "keystore": {**ref("Keystore"), "description": "Bring your own key: a keystore v3 file the password decrypts"}}, ["username", "password"]),
 "Keystore": obj({"version": {"type": "integer", "const": 3}, "id": {"type": "string"}, "address": {"type": "string", "pattern": "^[0-9a-fA-F]{40}$"}, "crypto": {"type": "object"}}, ["version", "id", "crypto"], desc="A keystore v3 file (Web3 Secret Storage): scrypt or PBKDF2, aes-128-ctr", extra=True),
 "Session": obj({"token": {"type": "string", "description": "Send as `Authorization: Bearer <token>`; valid 15 minutes"}, "username": {"type": "string"}, "role": role, "address": addr, "expires_at": u64}),
 "Me": obj({"username": {"type": "string"}, "role": role, "address": addr, "patient_id": nullable(u64)}),
 "PatientAccount": obj({"username": {"type": "string"}, "address": addr, "patient_id": u64, "recovery_code": {"type": "string", "description": "Shown this once: it resets the password and keeps the key (`POST /api/recover`)"}}),
 "ExportBundle": obj({"resourceType": {"const": "Bundle"}, "type": {"const": "collection"}, "timestamp": {"type": "string"}, "identifier": {"type": "object"}, "entry": {"type": "array", "items": obj({"fullUrl": {"type": "string", "format": "uri"}, "resource": {"type": "object", "required": ["resourceType"]}})}}, desc="A FHIR R4 Bundle (checked against the FHIR R4 definitions by medplum in the tests)"),
 "Profile": obj({"username": {"type": "string"}, "address": addr, "display_name": {"type": "string"}, "specialty": {"type": "string"}}),
 "ProfileUpdate": obj({"display_name": {"type": "string", "maxLength": 100, "description": "How patients see you; empty: your username"}, "specialty": {"type": "string", "maxLength": 100}}, []),
 "Login": obj({"username": {"type": "string"}, "password": {"type": "string", "format": "password"}, "code": {"type": "string", "description": "Accounts that turned on two-factor: the app's six digits, or a backup code"}}, ["username", "password"]),
 "TotpSetup": obj({"secret": {"type": "string", "pattern": "^[A-Z2-7]{32}$", "description": "Base32 (RFC 4648), to type into an app"}, "otpauth_uri": {"type": "string", "pattern": "^otpauth://totp/"}, "qr_svg": {"type": "string", "pattern": "^<svg", "description": "The URI's QR code as SVG"}}),
 "TotpCode": obj({"code": {"type": "string"}}),
 "TotpDisable": obj({"password": {"type": "string", "format": "password"}, "code": {"type": "string"}}),
 "BackupCodes": obj({"backup_codes": {"type": "array", "items": {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$"}, "minItems": 10, "maxItems": 10}}),
 "RecoveryCode": obj({"recovery_code": {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$", "description": "25 Crockford base32 characters in five groups"}}),
 "Recover": obj({"username": {"type": "string"}, "recovery_code": {"type": "string", "description": "Case, spaces and dashes do not matter"}, "new_password": {"type": "string", "format": "password", "minLength": 12}}),
 "Password": obj({"password": {"type": "string", "format": "password"}}),
 "ErasureReceipt": obj({"records": {"type": "array", "items": obj({"record_id": u64, "versions": {"type": "array", "items": u32}})}, "nodes": {"type": "array", "items": obj({"node": {"type": "string"}, "confirmed": {"type": "boolean", "description": "It destroyed every block and key share of the records it held"}, "blocks_deleted": {"type": "integer", "minimum": 0}, "error": nullable({"type": "string", "description": "Why it did not confirm (it is asked again until it does)"})})}, "tx_hash": nullable({**b256, "description": "The `eraseAccount` transaction; null when the patient had no chain identity yet"}), "block_number": nullable(u64)}),
 "NewProvider": obj({"username": {"type": "string"}, "password": {"type": "string", "format": "password"}, "display_name": {"type": "string", "maxLength": 100, "description": "How patients see it; empty: the username"}, "specialty": {"type": "string", "maxLength": 100}}, ["username", "password"]),
 "Provider": obj({"username": nullable({"type": "string"}), "address": addr, "display_name": nullable({"type": "string"}), "organisation": {"type": "string", "description": "Its organisation's name (`consortium`: the network admin's own)"}, "organisation_id": {"type": "integer", "minimum": 0}, "specialty": nullable({"type": "string"}), "local": {"type": "boolean", "description": "It has an account on this server"}, "disabled": {"type": "boolean", "description": "Disabled by this server's admin (admins only)"}}),
 "Account": obj({"username": {"type": "string"}, "address": addr, "disabled": {"type": "boolean", "description": "Disabled by the admin: deregistered on chain, no logins"}, "escrowed": {"type": "boolean", "description": "Its key is escrowed to the admin, so the admin can reset its password"}}),
 "Bundle": {"type": "object", "description": "FHIR R4 Bundle (type collection or transaction) with one Patient, up to 100 Conditions and the other supported resources; checked against R4 and kept whole (crates/fhir/README.md)", "required": ["resourceType", "type", "entry"],
            "properties": {"resourceType": {"const": "Bundle"}, "type": {"enum": ["collection", "transaction"]}, "entry": {"type": "array", "items": {"type": "object"}}}},
 "RecordForm": obj({"patient_name": {"type": "string"}, "birth_date": {"type": "string", "format": "date"}, "address": {"type": "string"}, "phone": {"type": "string"}, "health_condition": {"type": "string"}}, ["patient_name", "birth_date"]),
 "Stored": obj({"record_id": u64, "version": u32, "manifest_cid": {"type": "string", "description": "The manifest block's CID (the \"hash code\")"}, "tx_hash": b256, "block_number": u64}),
 "Version": obj({"version": u32, "manifest_cid": {"type": "string"}, "timestamp": u64, "tx_hash": b256, "author": {**addr, "description": "Who wrote it (the chain's RecordVersion.author): the owner, or a provider with write access"}, "author_name": nullable({"type": "string", "description": "The provider's name; null when the owner wrote it"})}),
 "RecordSummary": obj({"record_id": u64, "version": u32, "updated_at": u64, "versions": {"type": "array", "items": ref("Version")}}),
 "ReadRecord": obj({"record_id": u64, "version": u32, "owner": addr, "patient_id": u64, "manifest_cid": {"type": "string"}, "bundle": ref("Bundle"),
                    "form": nullable(ref("RecordForm")), "access_tx": {**b256, "description": "The transaction that logged this read"}, "emergency": {"type": "boolean"},
                    "attachments": {"type": "array", "items": ref("Attachment"), "description": "The files this version lists (its DocumentReferences), in order"}}),
 "Attachment": obj({"number": {**u32, "description": "`GET /api/records/{id}/attachments/{number}`"}, "content_type": {"type": "string"}, "title": nullable({"type": "string"}), "size": u64, "sha256": nullable({"type": "string", "pattern": "^[0-9a-f]{64}$"}), "created": nullable({"type": "string", "description": "FHIR instant"})}),
 "AttachmentStored": obj({"record_id": u64, "version": u32, "manifest_cid": {"type": "string"}, "tx_hash": b256, "block_number": u64, "attachment": {**u32, "description": "Its number in the record"}, "content_type": {"type": "string"}, "size": u64, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}),
 "GrantRequest": obj({"provider": {"type": "string", "description": "The provider's username"}, "record_id": nullable(u64), "expires_at": {**u64, "maximum": 2**40 - 1, "description": "Unix seconds, in the future and at most 2^40 - 1 (the contract's 40-bit times)"}, "write": {"type": "boolean", "default": False, "description": "Also let the provider write until then (add versions; for all records also new records the patient owns): a second transaction"}}, ["provider", "expires_at"]),
 "RevokeRequest": obj({"provider": {"type": "string"}, "record_id": nullable(u64), "write": {"type": "boolean", "default": False, "description": "End only the write grant on that scope; reading stays"}}, ["provider"]),
 "PasswordChange": obj({"current_password": {"type": "string"}, "new_password": {"type": "string", "minLength": 12}}),
 "Tx": obj({"tx_hash": b256, "write_tx_hash": {**b256, "description": "The write grant's transaction, when the grant gave writing too"}}, ["tx_hash"]),
 "Shared": obj({"patient_id": {**u64, "minimum": 1}, "record_id": nullable(u64), "expires_at": u64, "write_until": nullable({**u64, "description": "When the provider may also write there: when writing ends"})}),
 "WriteGrant": obj({"expires_at": u64, "revoked_at": nullable(u64), "active": {"type": "boolean"}}, desc="Writing on this scope: its own expiry and revocation"),
 "Grant": obj({"provider": nullable({"type": "string"}), "provider_address": addr, "record_id": nullable(u64), "expires_at": {**u64, "description": "Unix seconds; 0 when only a break-glass window is open"}, "revoked_at": nullable(u64),
               "active": {"type": "boolean", "description": "The grant allows reads now (a break-glass window aside)"}, "emergency": nullable(ref("EmergencyWindow")), "write": nullable(ref("WriteGrant"))}),
 "EmergencyWindow": obj({"until": {**u64, "description": "Unix seconds"}, "reason": nullable({"type": "string"}), "tx_hash": {**b256, "description": "The emergencyAccess transaction that opened it"}}, desc="A break-glass window open now on this record"),
 "EmergencyRequest": obj({"patient_id": u64, "reason": {"type": "string", "minLength": 1}}),
 "AccessLogEntry": obj({"record_id": u64, "version": nullable(u32), "reader": addr, "reader_username": nullable({"type": "string"}), "reader_organisation": nullable({"type": "string"}), "timestamp": u64, "tx_hash": b256, "emergency": {"type": "boolean"}, "reason": nullable({"type": "string"})}),
 "Status": obj({"chain": obj({"backend": {"type": "string"}, "chain_id": u64, "head_block": u64, "head_hash": b256, "head_timestamp": u64, "contract": addr}),
                "k": {"type": "integer"}, "n": {"type": "integer"}, "reachable": {"type": "integer", "minimum": 0},
                "nodes": {"type": "array", "description": "Each node: only for the admin", "items": obj({"index": {"type": "integer"}, "name": {"type": "string"}, "address": addr, "public_key": b256, "reachable": {"type": "boolean"}})}},
               ["chain", "k", "n", "reachable"]),
}
doc = {
 "openapi": "3.1.0",
 "info": {"title": "SecureEHR API", "version": "0.1.0", "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
          "description": "Patient-controlled, audited health records. Every flow of the web UI, for mobile apps and scripts. Errors are `{\"error\": code, \"message\": text}` with the status below; bodies are limited to 1 MiB; a malformed or mistyped body is a 400 naming the field."},
 "servers": [{"url": "/"}],
 "security": AUTH,
 "paths": paths,
 "components": {"responses": {f"Status{c}": v for c, v in E.items()}, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The token from POST /api/session"}}, "schemas": schemas},
}
print(json.dumps(doc, indent=2, ensure_ascii=False))
