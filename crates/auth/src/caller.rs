//! Who is calling a public endpoint: nobody in particular, a signed-in user (a verified
//! gureum JWT), a function (its `GUREUM_FUNCTION_TOKEN`) or the administrator (the admin
//! token). The gateway resolves it once per request and hands it to the auth, data and
//! function paths, which decide what each kind may do.

use serde_json::{Map, Value, json};

/// The verified identity behind a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// No credentials.
    Anonymous,
    /// A user with a valid access token.
    User(UserIdentity),
    /// A function, by its platform token.
    Function(String),
    /// The administrator, by the admin token.
    Admin,
}

/// A signed-in user as rules and functions see them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserIdentity {
    /// The user's id (the JWT's `sub`).
    pub uid: String,
    /// The user's email.
    pub email: String,
    /// Every claim of the token.
    pub claims: Map<String, Value>,
}

impl Caller {
    /// The `auth` variable of a rule: `null` for anyone but a user, else
    /// `{"uid", "email", "claims"}`.
    pub fn rule_auth(&self) -> Option<Value> {
        match self {
            Caller::User(user) => Some(json!({
                "uid": user.uid,
                "email": user.email,
                "claims": Value::Object(user.claims.clone()),
            })),
            _ => None,
        }
    }

    /// Whether rules are skipped: the admin and functions are trusted server code (like
    /// Firebase's Admin SDK); a function that wants a user's rules forwards that user's
    /// token instead of its own.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Caller::Admin | Caller::Function(_))
    }

    /// The uid of a signed-in user; `None` for anyone else.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User(user) => Some(&user.uid),
            _ => None,
        }
    }

    /// The owner recorded on what this caller creates: the uid, `fn:NAME`, or none for
    /// the admin and anonymous callers.
    pub fn owner(&self) -> Option<String> {
        match self {
            Caller::User(user) => Some(user.uid.clone()),
            Caller::Function(name) => Some(format!("fn:{name}")),
            Caller::Admin | Caller::Anonymous => None,
        }
    }
}
