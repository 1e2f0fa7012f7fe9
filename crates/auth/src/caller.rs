//! Who is calling a public endpoint: nobody in particular, a signed-in user (a verified
//! gureum JWT), a function (its `GUREUM_FUNCTION_TOKEN`) or the administrator (the admin
//! token). The gateway resolves it once per request and hands it to the auth, data and
//! function paths, which decide what each kind may do.

use gureum_model::{DataAccess, FunctionIdentity};
use serde_json::{Map, Value, json};

/// The verified identity behind a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// No credentials.
    Anonymous,
    /// A user with a valid access token.
    User(UserIdentity),
    /// A function version, by its token (what it may do is in its `[permissions]`).
    Function(FunctionIdentity),
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

    /// Whether the caller is server code (the admin or a function) rather than a client:
    /// per-address limits meant for browsers do not apply to it.
    pub fn is_server(&self) -> bool {
        matches!(self, Caller::Admin | Caller::Function(_))
    }

    /// What the caller may do on `collection` without its rules: everything for the
    /// admin, a function's `[permissions] data` grant, nothing for users and anonymous
    /// callers (the rules decide for them). A function that wants a user's rules instead
    /// forwards that user's token.
    pub fn data_grant(&self, collection: &str) -> Option<DataAccess> {
        match self {
            Caller::Admin => Some(DataAccess::Admin),
            Caller::Function(function) => function.permissions().data_access(collection),
            Caller::User(_) | Caller::Anonymous => None,
        }
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
            Caller::Function(function) => Some(format!("fn:{}", function.name)),
            Caller::Admin | Caller::Anonymous => None,
        }
    }
}
