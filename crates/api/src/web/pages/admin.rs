//! The admin's page: registering providers, disabling, enabling and resetting their
//! passwords, and the chain and storage nodes' status.

use maud::{Markup, html};

use super::*;

pub(crate) struct NodeRow {
    pub index: usize,
    pub address: String,
    pub name: String,
    pub reachable: bool,
}

/// One provider of this server, on the admin page.
pub(crate) struct ProviderRow {
    pub username: String,
    pub address: String,
    pub disabled: bool,
    /// Its key is escrowed to the admin: the password can be reset.
    pub escrowed: bool,
}

pub(crate) struct AdminPage<'a> {
    pub notice: Option<&'a str>,
    pub errors: FieldErrors,
    pub username: &'a str,
    pub providers: Vec<ProviderRow>,
    /// A refused password reset: the provider's username and why.
    pub reset_error: Option<(String, String)>,
    pub chain: Vec<(&'static str, String)>,
    pub threshold: String,
    pub nodes: Vec<NodeRow>,
}

pub(crate) fn admin(ctx: &Ctx<'_>, p: &AdminPage<'_>) -> Markup {
    layout(
        ctx,
        "Administration",
        html! {
            h1 { "Administration" }
            @if let Some(n) = p.notice { p.success role="status" { (n) } }
            section aria-labelledby="addp-h" {
                h2 #addp-h { "Register a medical provider" }
                form method="post" action="/admin/providers" novalidate {
                    (csrf(ctx))
                    (form_errors(&p.errors, &["username", "password", "display_name", "specialty"]))
                    (field(&Field { form: "provider", name: "username", label: "Username", kind: "text", value: p.username, required: true, autocomplete: "off", numeric: false, hint: None }, &p.errors))
                    (field(&Field { form: "provider", name: "password", label: "Password", kind: "password", value: "", required: true, autocomplete: "new-password", numeric: false, hint: Some("At least 12 characters.") }, &p.errors))
                    (field(&Field { form: "provider", name: "display_name", label: "Display name", kind: "text", value: "", required: false, autocomplete: "off", numeric: false, hint: Some("How patients of every organisation see this provider in the directory; empty: the username.") }, &p.errors))
                    (field(&Field { form: "provider", name: "specialty", label: "Specialty", kind: "text", value: "", required: false, autocomplete: "off", numeric: false, hint: None }, &p.errors))
                    button type="submit" { "Register provider" }
                }
            }
            section aria-labelledby="provs-h" {
                h2 #provs-h { "Medical providers" }
                @if p.providers.is_empty() { p { "None yet." } }
                p.small { "Disabling a provider takes it off the chain (every grant and emergency access it holds stops working), ends its sessions and refuses its logins until you enable it again." }
                ul.providers {
                    @for r in &p.providers {
                        @let name = r.username.as_str();
                        li.provider.disabled[r.disabled] {
                            strong { (name) } " " code.hash { (r.address) }
                            @if r.disabled { " " span.bad { "disabled" } }
                            form.inline method="post" action={ "/admin/providers/" @if r.disabled { "enable" } @else { "disable" } } {
                                (csrf(ctx))
                                input type="hidden" name="username" value=(name);
                                @if r.disabled {
                                    button type="submit" { "Enable " (name) }
                                } @else {
                                    button.danger type="submit" { "Disable " (name) }
                                }
                            }
                            @let error = p.reset_error.as_ref().filter(|(u, _)| u == name).map(|(_, m)| m.as_str());
                            @if r.escrowed {
                                details.reset open[error.is_some()] {
                                    summary { "Reset " (name) "'s password" }
                                    form method="post" action="/admin/providers/password" novalidate {
                                        (csrf(ctx))
                                        input type="hidden" name="username" value=(name);
                                        @let id = format!("reset-{name}");
                                        div.field {
                                            label for=(id) { "New password for " (name) }
                                            p.hint id={ (id) "-hint" } { "At least 12 characters. Give it to them in person; they keep their key and grants, their sessions end, and they should change it on their Account page." }
                                            input id=(id) name="password" type="password" required autocomplete="new-password"
                                                aria-describedby={ (id) "-hint" @if error.is_some() { " " (id) "-error" } }
                                                aria-invalid=[error.is_some().then_some("true")];
                                            @if let Some(m) = error { p.error id={ (id) "-error" } role="alert" { "New password: " (m) } }
                                        }
                                        button type="submit" { "Reset password" }
                                    }
                                }
                            } @else {
                                p.small { "Its password can be reset once it has signed in again (its key is escrowed to you then)." }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="chain-h" {
                h2 #chain-h { "Chain" }
                dl.facts { @for (k, v) in &p.chain { dt { (k) } dd { code.hash { (v) } } } }
            }
            section aria-labelledby="nodes-h" {
                h2 #nodes-h { "Nodes (" (p.threshold) ")" }
                ul.nodes {
                    @for n in &p.nodes {
                        li.card {
                            p { "Node " (n.index) ": " @if n.reachable { span.ok { "reachable" } } @else { span.bad { "unreachable" } } }
                            p.small { (n.name) }
                            p.small { code.hash { (n.address) } }
                        }
                    }
                }
            }
        },
    )
}
