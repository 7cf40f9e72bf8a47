//! The JSON API's wire types: every request and response body under `/api`, as the
//! handlers write and read them and as clients (the `secure-ehr` CLI) send and parse them.
//!
//! Each type is the one definition of its JSON shape. `openapi.json` documents the same
//! shapes under `components/schemas` (the schema's name is given on each type), and
//! `tests/openapi.rs` validates real responses and the requests built from these types
//! against it, so the document cannot drift from them.
//!
//! Optional fields are written as `null`, not left out, except in [`ErrorBody`]. Request
//! bodies refuse unknown fields; response bodies accept them, so an older client keeps
//! working when a newer server adds a field.
//!
//! `Debug` leaves out passwords, tokens and personal data (record contents).

use std::fmt;

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// What a user may do: `patient`, `provider` or `admin` (schema: the `role` enum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Owns records and grants access to them.
    Patient,
    /// Reads what patients granted.
    Provider,
    /// Registers providers.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Patient => "patient",
            Self::Provider => "provider",
            Self::Admin => "admin",
        })
    }
}

/// Every error: `{error, message}` plus the details of some codes (schema `Error`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The machine-readable code (`invalid_input`, `not_found`, …).
    pub error: String,
    /// What was wrong, for a human; never a value from the request.
    pub message: String,
    /// `invalid_input`: the field (`username`, `patient_id`, `body`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `invalid_record`: each broken field and its rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// `rate_limited`: seconds until the next attempt (also the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// One broken field of an `invalid_record` error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The FHIR path (`entry[0].resource.birthDate`) or the form field (`birth_date`).
    pub path: String,
    /// The rule it breaks.
    pub message: String,
}

/// `POST /api/patients` (schema `SignUp`): credentials, and optionally the patient's own
/// key as a keystore v3 file (the JSON any Ethereum wallet exports), which the password
/// decrypts. `Debug` leaves out the password and the keystore.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    /// Login name.
    pub username: String,
    /// Password (also the keystore's, when one is brought).
    pub password: String,
    /// A keystore v3 file to use as the account's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<serde_json::Value>,
}

impl fmt::Debug for SignUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignUp")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A username and password: a [`Login`] without a two-factor code (`POST /api/session`
/// takes it as one), and a [`SignUp`] without a keystore (`POST /api/patients`). `Debug`
/// leaves out the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A new provider: `POST /api/providers` (schema `NewProvider`). `display_name` (empty:
/// the username) and `specialty` go into its directory entry, which every organisation's
/// server lists.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// How patients see it ("Dr Carol Smith"), at most 100 bytes.
    #[serde(default)]
    pub display_name: String,
    /// Its specialty, at most 100 bytes.
    #[serde(default)]
    pub specialty: String,
}

impl fmt::Debug for NewProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewProvider")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("specialty", &self.specialty)
            .finish_non_exhaustive()
    }
}

/// One provider of the network: `GET /api/providers` (each; schema `Provider`). Every
/// provider registered on chain, by any organisation, with its directory entry (checked
/// against the digest on chain; `null` fields when it could not be fetched); for an admin
/// also this server's disabled providers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Its login name at its organisation's server.
    pub username: Option<String>,
    /// Its Ethereum address: what a grant names.
    pub address: Address,
    /// How patients see it.
    pub display_name: Option<String>,
    /// Its organisation's name (`consortium`: registered by the network's admin itself).
    pub organisation: String,
    /// Its organisation's id on chain (0: the consortium).
    pub organisation_id: u32,
    /// Its specialty.
    pub specialty: Option<String>,
    /// It has an account on this server.
    pub local: bool,
    /// Disabled by this server's admin (not on chain; listed to admins only).
    pub disabled: bool,
}

/// A signed-in session: `POST /api/session` (schema `Session`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// The user's Ethereum address.
    pub address: Address,
    /// When the token expires, unix seconds.
    pub expires_at: u64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("address", &self.address)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Who a token belongs to: `GET /api/me` (schema `Me`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// The user's Ethereum address.
    pub address: Address,
    /// The on-chain patient ID, for a registered patient.
    pub patient_id: Option<u64>,
}

/// A new patient: `POST /api/patients` (schema `PatientAccount`). `Debug` leaves out the
/// recovery code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientAccount {
    /// Login name.
    pub username: String,
    /// The patient's Ethereum address.
    pub address: Address,
    /// The sequential patient ID the contract gave.
    pub patient_id: u64,
    /// The recovery code, shown this once: it resets the password and keeps the key
    /// (`POST /api/recover`).
    pub recovery_code: String,
}

impl std::fmt::Debug for PatientAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientAccount")
            .field("username", &self.username)
            .field("address", &self.address)
            .field("patient_id", &self.patient_id)
            .finish_non_exhaustive()
    }
}

/// The signed-in provider's directory entry: `GET` and `PUT /api/me/profile` (schema
/// `Profile`; in a `PUT`, `username` and `address` are left out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Its login name (from the entry).
    pub username: String,
    /// Its address.
    pub address: Address,
    /// How patients of every organisation see it.
    pub display_name: String,
    /// Its specialty (may be empty).
    pub specialty: String,
}

/// A provider's new display fields: `PUT /api/me/profile` (schema `ProfileUpdate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// How patients see it ("Dr Carol Smith"), at most 100 bytes; empty: the username.
    #[serde(default)]
    pub display_name: String,
    /// Its specialty, at most 100 bytes.
    #[serde(default)]
    pub specialty: String,
}

/// A sign-in: `POST /api/session` (schema `Login`). `code` is needed once the account
/// turned on two-factor: a code from its authenticator app, or a backup code. `Debug`
/// leaves out the password and the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// The second factor (accounts that enrolled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Two-factor enrolment started: `POST /api/me/totp` (schema `TotpSetup`). `Debug` leaves
/// out the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetup {
    /// The secret, base32 (to type into an authenticator app).
    pub secret: String,
    /// The `otpauth://totp/…` URI the QR code holds.
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, as SVG drawn by the server.
    pub qr_svg: String,
}

impl fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSetup(<redacted>)")
    }
}

/// A code from the authenticator app: `POST /api/me/totp/confirm` (schema `TotpCode`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// Six digits.
    pub code: String,
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(<redacted>)")
    }
}

/// Two-factor is on: the one-time backup codes, shown this once (schema `BackupCodes`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCodes {
    /// Ten codes, each good for one sign-in instead of an app code.
    pub backup_codes: Vec<String>,
}

impl fmt::Debug for BackupCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCodes(<redacted>)")
    }
}

/// Turning two-factor off: `DELETE /api/me/totp` (schema `TotpDisable`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpDisable {
    /// The password.
    pub password: String,
    /// A current app code or a backup code.
    pub code: String,
}

impl fmt::Debug for TotpDisable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpDisable(<redacted>)")
    }
}

/// A recovery code, shown once: `POST /api/recover`, `POST /api/me/recovery` (schema
/// `RecoveryCode`). `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCode {
    /// 25 characters in five groups of five (Crockford base32).
    pub recovery_code: String,
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

/// A forgotten password: `POST /api/recover` (schema `Recover`). `Debug` leaves out the
/// code and the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// Login name.
    pub username: String,
    /// The account's recovery code (case, spaces and dashes do not matter).
    pub recovery_code: String,
    /// The new password (12 characters to 1,024 bytes).
    pub new_password: String,
}

impl std::fmt::Debug for Recover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recover")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A password alone: `POST /api/me/recovery` and `DELETE /api/account` (your current one),
/// `POST /api/providers/{username}/password` (the provider's new one) (schema `Password`).
/// `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Password {
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What deleting an account destroyed: `DELETE /api/account` (schema `ErasureReceipt`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReceipt {
    /// Every record erased, with its versions.
    pub records: Vec<ErasedRecord>,
    /// Each storage and custodian node, and whether it confirmed destroying its part.
    pub nodes: Vec<NodeErasure>,
    /// The `eraseAccount` transaction (`null`: the patient had no chain identity yet).
    pub tx_hash: Option<B256>,
    /// The block it was mined in.
    pub block_number: Option<u64>,
}

/// One record in an [`ErasureReceipt`] (schema `ErasedRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedRecord {
    /// The record ID.
    pub record_id: u64,
    /// Its versions, oldest first.
    pub versions: Vec<u32>,
}

/// One node in an [`ErasureReceipt`] (schema `NodeErasure`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeErasure {
    /// The node's name.
    pub node: String,
    /// It confirmed destroying every block and key share of the records it held.
    pub confirmed: bool,
    /// Blocks it deleted.
    pub blocks_deleted: u32,
    /// Why it did not confirm: the server asks again until it does, and the node, when it
    /// comes back, destroys them before it serves anything.
    pub error: Option<String>,
}

/// A provider account of this server: `POST /api/providers`,
/// `POST /api/providers/{username}/disable|enable` (schema `Account`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Login name.
    pub username: String,
    /// The Ethereum address.
    pub address: Address,
    /// Disabled by the admin: deregistered on chain, no logins.
    pub disabled: bool,
    /// Its key is escrowed to the admin, so the admin can reset its password
    /// (`POST /api/providers/{username}/password`).
    pub escrowed: bool,
}

/// The record web form's five fields: the body of `POST /api/records/form`, and a read
/// record's `form` (schema `RecordForm`). Only the name and birth date are required.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordForm {
    /// The patient's full name.
    pub patient_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// Free-text address (may be empty).
    #[serde(default)]
    pub address: String,
    /// Phone number (may be empty).
    #[serde(default)]
    pub phone: String,
    /// Health condition, free text (may be empty).
    #[serde(default)]
    pub health_condition: String,
}

impl fmt::Debug for RecordForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordForm { <redacted> }")
    }
}

/// What an upload or update stored: `POST /api/records`, `POST /api/records/form`,
/// `PUT /api/records/{id}` (schema `Stored`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The record ID.
    pub record_id: u64,
    /// The version stored.
    pub version: u32,
    /// The manifest block's CID (the "hash code").
    pub manifest_cid: String,
    /// The `addRecord`/`updateRecord` transaction.
    pub tx_hash: B256,
    /// The block it was mined in.
    pub block_number: u64,
}

/// One version of a record, in a [`RecordSummary`] (schema `Version`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordVersion {
    /// Version number, from 1.
    pub version: u32,
    /// Its manifest's CID.
    pub manifest_cid: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// The transaction that stored it.
    pub tx_hash: B256,
    /// Who wrote it: the owner, or a provider with write access.
    pub author: Address,
    /// The provider's name when a provider wrote it (`None`: the owner).
    pub author_name: Option<String>,
}

/// A patient's record with its versions: `GET /api/records` (each; schema
/// `RecordSummary`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    /// The record ID.
    pub record_id: u64,
    /// The current version.
    pub version: u32,
    /// Unix seconds of the last change.
    pub updated_at: u64,
    /// Every version, oldest first.
    pub versions: Vec<RecordVersion>,
}

/// A decrypted record, as read: `GET /api/records/{id}`, and each of
/// `GET /api/patients/{patient_id}/records` and `POST /api/emergency` (schema
/// `ReadRecord`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadRecord {
    /// The record ID.
    pub record_id: u64,
    /// The version read.
    pub version: u32,
    /// The owner's address.
    pub owner: Address,
    /// The owner's patient ID.
    pub patient_id: u64,
    /// The manifest's CID.
    pub manifest_cid: String,
    /// The FHIR R4 Bundle.
    pub bundle: serde_json::Value,
    /// The web form's fields, when the bundle has that shape.
    pub form: Option<RecordForm>,
    /// The transaction that logged this read.
    pub access_tx: B256,
    /// Whether it was a break-glass read.
    pub emergency: bool,
    /// The documents this version lists (its `DocumentReference`s), in order.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// A document stored beside a record version (schema `Attachment`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Its number in the record, from 1: `GET /api/records/{id}/attachments/{number}`.
    pub number: u32,
    /// Its media type.
    pub content_type: String,
    /// Its title, e.g. the file's name.
    pub title: Option<String>,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: Option<String>,
    /// When it was stored (FHIR instant).
    pub created: Option<String>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("number", &self.number)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What `POST /api/records/{id}/attachments` stored (schema `AttachmentStored`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentStored {
    /// The record ID.
    pub record_id: u64,
    /// The new version, which lists it.
    pub version: u32,
    /// The new version's manifest CID.
    pub manifest_cid: String,
    /// The `updateRecord` transaction.
    pub tx_hash: B256,
    /// The block it was mined in.
    pub block_number: u64,
    /// Its number in the record, from 1.
    pub attachment: u32,
    /// Its media type.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

impl fmt::Debug for ReadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadRecord")
            .field("record_id", &self.record_id)
            .field("version", &self.version)
            .field("manifest_cid", &self.manifest_cid)
            .finish_non_exhaustive()
    }
}

/// `POST /api/grants`: let a provider read one record, or all (schema `GrantRequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The provider's username.
    pub provider: String,
    /// One record, or `None` for all the patient's records.
    #[serde(default)]
    pub record_id: Option<u64>,
    /// When the grant expires, unix seconds.
    pub expires_at: u64,
    /// Also let the provider write until then: add versions to the record (or, for all
    /// records, to any and new records the patient owns). A second transaction.
    #[serde(default)]
    pub write: bool,
}

/// `POST /api/grants/revoke` (schema `RevokeRequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The provider's username.
    pub provider: String,
    /// One record: its grant and break-glass window end. `None`: everything the provider
    /// holds on the patient's records ends (the all-records grant, every record grant and
    /// every break-glass window).
    #[serde(default)]
    pub record_id: Option<u64>,
    /// End only the write grant on that scope (`record_id`, or the all-records one);
    /// reading stays.
    #[serde(default)]
    pub write: bool,
}

/// A transaction: `POST /api/grants`, `POST /api/grants/revoke` (schema `Tx`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// Its hash.
    pub tx_hash: B256,
    /// The write grant's transaction, when a grant gave writing too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_tx_hash: Option<B256>,
}

/// `POST /api/me/password` (schema `PasswordChange`). `Debug` leaves both out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: String,
    /// The new one (12 characters to 1,024 bytes).
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange(<redacted>)")
    }
}

/// A grant as its patient sees it: `GET /api/grants` (each; schema `Grant`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The provider's username, when it has an account here.
    pub provider: Option<String>,
    /// The provider's address.
    pub provider_address: Address,
    /// One record, or `None` for all the patient's records.
    pub record_id: Option<u64>,
    /// Unix seconds.
    pub expires_at: u64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<u64>,
    /// Whether the grant allows reads now (a break-glass window aside).
    pub active: bool,
    /// The break-glass window open now on this record, if any; revoking the record ends it.
    pub emergency: Option<EmergencyWindow>,
    /// Writing on this scope, if it was ever granted (its own expiry and revocation).
    pub write: Option<WriteGrant>,
}

/// A write grant (schema `WriteGrant`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteGrant {
    /// When writing ends, unix seconds.
    pub expires_at: u64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<u64>,
    /// Whether it allows writing now.
    pub active: bool,
}

/// A grant the provider holds now: `GET /api/shared` (each; schema `Shared`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    /// The patient's ID (what `GET /api/patients/{patient_id}/records` takes).
    pub patient_id: u64,
    /// One record, or `None` for all the patient's records.
    pub record_id: Option<u64>,
    /// When it ends, unix seconds.
    pub expires_at: u64,
    /// When the provider may also write there, when writing ends (unix seconds).
    pub write_until: Option<u64>,
}

/// A break-glass window open now (schema `EmergencyWindow`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyWindow {
    /// When it ends by itself, unix seconds.
    pub until: u64,
    /// The reason the provider gave, when known here.
    pub reason: Option<String>,
    /// The `emergencyAccess` transaction that opened it.
    pub tx_hash: B256,
}

/// `POST /api/emergency`: break-glass access (schema `EmergencyRequest`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyRequest {
    /// Whose records.
    pub patient_id: u64,
    /// Why (required; the patient sees it).
    pub reason: String,
}

impl fmt::Debug for EmergencyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmergencyRequest")
            .field("patient_id", &self.patient_id)
            .finish_non_exhaustive()
    }
}

/// One read of a patient's records: `GET /api/access-log` (each; schema
/// `AccessLogEntry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogEntry {
    /// The record read.
    pub record_id: u64,
    /// The version read, when known.
    pub version: Option<u32>,
    /// Who read it.
    pub reader: Address,
    /// The reader's username: its account here, or its entry in the network's directory.
    pub reader_username: Option<String>,
    /// The reader's organisation, for a provider of another organisation registered now.
    pub reader_organisation: Option<String>,
    /// Unix seconds.
    pub timestamp: u64,
    /// The transaction that logged the read.
    pub tx_hash: B256,
    /// A break-glass read.
    pub emergency: bool,
    /// The break-glass reason, when known here.
    pub reason: Option<String>,
}

/// The chain, in [`Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Which backend (`embedded`, `json-rpc`).
    pub backend: String,
    /// The chain ID.
    pub chain_id: u64,
    /// The newest block.
    pub head_block: u64,
    /// Its hash.
    pub head_hash: B256,
    /// Its timestamp, unix seconds.
    pub head_timestamp: u64,
    /// The registry contract.
    pub contract: Address,
}

/// One storage and custodian node, in [`Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Position in the node set, from 0.
    pub index: usize,
    /// Its name (and URL when remote).
    pub name: String,
    /// Its identity address.
    pub address: Address,
    /// Its custodian key.
    pub public_key: B256,
    /// Whether it answered just now.
    pub reachable: bool,
}

/// The deployment: `GET /api/status` (schema `Status`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The chain.
    pub chain: ChainStatus,
    /// Shares (and fragments) needed to read a record.
    pub k: u8,
    /// Nodes.
    pub n: u8,
    /// How many nodes answered with the key the chain lists for them.
    pub reachable: usize,
    /// Each node: for the admin only (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeStatus>>,
}
