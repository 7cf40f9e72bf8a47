//! The account routes of the JSON API: password change and reset, recovery codes,
//! two-factor sign-in, a provider's own directory entry, a patient leaving.

use super::*;

/// A new password for whoever is signed in; the other sessions of the account end.
pub(super) async fn change_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    auth: Auth,
    ApiJson(p): ApiJson<types::PasswordChange>,
) -> Result<StatusCode> {
    state
        .service()
        .change_password(
            &auth.session,
            &auth.token,
            &p.current_password,
            &p.new_password,
            &client,
        )
        .await
        .map_err(new_password_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The QR code of `uri`, as SVG.
pub(crate) fn qr_svg(uri: &str) -> String {
    qrcode::QrCode::new(uri.as_bytes())
        .map(|q| {
            q.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(220, 220)
                .quiet_zone(true)
                .build()
        })
        // Inline in a page: without the XML declaration.
        .map(|svg| {
            svg.find("<svg")
                .map_or(svg.clone(), |at| svg[at..].to_owned())
        })
        .unwrap_or_default()
}

/// Starts two-factor enrolment (any role): the secret, its URI and QR code.
pub(super) async fn begin_totp(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<types::TotpSetup>> {
    let setup = state.service().begin_totp(&auth.session)?;
    Ok(Json(types::TotpSetup {
        secret: setup.secret.to_string(),
        otpauth_uri: setup.uri.to_string(),
        qr_svg: qr_svg(&setup.uri),
    }))
}

/// Two-factor on, with a code from the app: the backup codes back.
pub(super) async fn confirm_totp(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    auth: Auth,
    ApiJson(c): ApiJson<types::TotpCode>,
) -> Result<Json<types::BackupCodes>> {
    let codes = state
        .service()
        .confirm_totp(&auth.session, &c.code, &client)?;
    Ok(Json(types::BackupCodes {
        backup_codes: codes.iter().map(|c| c.to_string()).collect(),
    }))
}

/// Two-factor off: the password and a code.
pub(super) async fn disable_totp(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    auth: Auth,
    ApiJson(d): ApiJson<types::TotpDisable>,
) -> Result<StatusCode> {
    state
        .service()
        .disable_totp(&auth.session, &d.password, &d.code, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new recovery code for whoever is signed in; the old one stops working.
pub(super) async fn new_recovery_code(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    auth: Auth,
    ApiJson(p): ApiJson<types::Password>,
) -> Result<Json<types::RecoveryCode>> {
    let code = state
        .service()
        .new_recovery_code(&auth.session, &p.password, &client)
        .await?;
    Ok(Json(types::RecoveryCode {
        recovery_code: code.expose().to_owned(),
    }))
}

/// A forgotten password, reset with the recovery code: the key stays; a new code comes
/// back.
pub(super) async fn recover(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(r): ApiJson<types::Recover>,
) -> Result<Json<types::RecoveryCode>> {
    let code = state
        .service()
        .recover(&r.username, &r.recovery_code, &r.new_password, &client)
        .await
        .map_err(new_password_error)?;
    Ok(Json(types::RecoveryCode {
        recovery_code: code.expose().to_owned(),
    }))
}

fn profile(p: svc::ProviderProfile) -> types::Profile {
    types::Profile {
        username: p.username,
        address: p.address,
        display_name: p.display_name,
        specialty: p.specialty,
    }
}

/// The signed-in provider's directory entry as the network sees it.
pub(super) async fn my_profile(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<types::Profile>> {
    let me = auth.provider()?;
    let p = state.service().my_profile(&me).await?.ok_or_else(|| {
        Error::NotFound("your directory entry (not on chain, or no node has it)".into())
    })?;
    Ok(Json(profile(p)))
}

/// The signed-in provider changes its display fields (a new entry, its digest on chain).
pub(super) async fn update_profile(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(u): ApiJson<types::ProfileUpdate>,
) -> Result<Json<types::Profile>> {
    let me = auth.provider()?;
    let input = svc::ProfileInput {
        display_name: u.display_name,
        specialty: u.specialty,
    };
    Ok(Json(profile(
        state.service().update_profile(&me, &input).await?,
    )))
}

/// The admin sets a provider's password (the provider keeps its key, address and grants).
pub(super) async fn reset_provider_password(
    State(state): State<AppState>,
    auth: Auth,
    Path(username): Path<String>,
    ApiJson(p): ApiJson<types::Password>,
) -> Result<Json<types::Account>> {
    let me = auth.admin()?;
    let a = state
        .service()
        .reset_provider_password(&me, &username, &p.password)
        .await?;
    Ok(Json(account(a)))
}

/// A service error, with a weak new password named as the request's `new_password`.
fn new_password_error(e: svc::Error) -> Error {
    match e {
        svc::Error::Accounts(svc::AccountsError::InvalidPassword(why)) => {
            Error::input("new_password", why)
        }
        other => other.into(),
    }
}

/// A patient leaves: the account is deleted and every record erased by destroying its keys
/// and blocks; the receipt says what was destroyed and which nodes confirmed.
pub(super) async fn delete_account(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    auth: Auth,
    ApiJson(p): ApiJson<types::Password>,
) -> Result<Json<types::ErasureReceipt>> {
    let me = auth.patient()?;
    let receipt = state
        .service()
        .delete_account(&me, &p.password, &client)
        .await?;
    Ok(Json(erasure_receipt(receipt)))
}

pub(crate) fn erasure_receipt(r: svc::ErasureReceipt) -> types::ErasureReceipt {
    types::ErasureReceipt {
        records: r
            .records
            .into_iter()
            .map(|r| types::ErasedRecord {
                record_id: r.record_id,
                versions: r.versions,
            })
            .collect(),
        nodes: r
            .nodes
            .into_iter()
            .map(|n| types::NodeErasure {
                node: n.node,
                confirmed: n.confirmed,
                blocks_deleted: n.blocks_deleted,
                error: n.error,
            })
            .collect(),
        tx_hash: r.tx_hash,
        block_number: r.block_number,
    }
}
