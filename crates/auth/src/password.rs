//! Passwords: argon2id hashes in PHC string form, a sign-up strength check, and email
//! address validation.
//!
//! Hashing and verifying are deliberately CPU heavy (tens of milliseconds and 19 MiB of
//! memory each): async callers must run them on a blocking thread
//! (`tokio::task::spawn_blocking`), never on a runtime worker.

use std::sync::OnceLock;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;

use crate::error::{AuthError, InvalidEmail, WeakPassword};

/// argon2 memory cost in KiB (OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1).
pub const M_COST_KIB: u32 = 19_456;
/// argon2 iterations.
pub const T_COST: u32 = 2;
/// argon2 lanes.
pub const P_COST: u32 = 1;
/// Bytes of random salt per hash.
pub const SALT_LEN: usize = 16;

/// Minimum password length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Maximum password length, in bytes (bounds the work an attacker can ask for).
pub const MAX_PASSWORD_BYTES: usize = 256;
/// Maximum email address length, in bytes (RFC 5321 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

fn hasher() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with argon2id (m=19456 KiB, t=2, p=1) and a random 16-byte salt.
/// Returns the PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
///
/// CPU heavy: call it on a blocking thread.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::PasswordHash(e.to_string()))?;
    let argon = hasher();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| AuthError::PasswordHash(e.to_string()))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_work_memory(&argon, |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
    })
    .map_err(|e| AuthError::PasswordHash(e.to_string()))?;
    let output = Output::new(&out).map_err(|e| AuthError::PasswordHash(e.to_string()))?;
    let params = ParamsString::try_from(argon.params())
        .map_err(|e| AuthError::PasswordHash(e.to_string()))?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

thread_local! {
    /// argon2's working memory (19 MiB), kept by each thread that hashes — the auth
    /// service's few hashing threads — instead of allocated and freed per hash: freed
    /// blocks of that size stay in the allocator's per-thread arenas, so a burst of
    /// sign-ins grew the server by hundreds of megabytes.
    static WORK_MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_work_memory<T>(argon: &Argon2<'_>, work: impl FnOnce(&mut [Block]) -> T) -> T {
    WORK_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = argon.params().block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        work(&mut memory[..blocks])
    })
}

/// Whether `password` matches the PHC string `phc` (as made by [`hash_password`]; the
/// parameters are read from the string, so older hashes keep verifying after a change of
/// parameters). The comparison is constant time. An unparsable `phc` is `false`.
///
/// CPU heavy: call it on a blocking thread.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let computed = with_work_memory(&argon, |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
    });
    // `Output`'s equality is constant time.
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

/// Does the same work as [`verify_password`] against a fixed hash and returns nothing. Call
/// it when the email is unknown, so a failed sign-in takes as long whether or not the
/// account exists (no account discovery by timing).
///
/// CPU heavy: call it on a blocking thread.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        hash_password("gureum dummy password for timing").unwrap_or_else(|_| String::new())
    });
    let _ = verify_password(password, phc);
}

/// Checks a new password against the sign-up rules, in this order: at least 8 characters,
/// at most 256 bytes, not one repeated character, not the email address or its part
/// before the `@` (case-insensitive), not one of the ~100 most common passwords
/// (case-insensitive). The error names the rule that failed and how to satisfy it.
pub fn check_strength(password: &str, email: &str) -> Result<(), WeakPassword> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(WeakPassword::RepeatedCharacter);
    }
    let lower = password.to_lowercase();
    let email = email.trim().to_lowercase();
    if !email.is_empty() {
        let local = email.split('@').next().unwrap_or_default();
        if lower == email || (!local.is_empty() && lower == local) {
            return Err(WeakPassword::SameAsEmail);
        }
    }
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err(WeakPassword::Common);
    }
    Ok(())
}

/// Validates an email address and returns it normalised (trimmed, lowercase). A sane check,
/// not RFC 5322: at most 254 bytes, no whitespace or control characters, exactly one `@`,
/// 1 to 64 bytes before it, and a domain after it with at least one dot and no empty label.
pub fn validate_email(email: &str) -> Result<String, InvalidEmail> {
    let email = email.trim();
    if email.is_empty() {
        return Err(InvalidEmail::Empty);
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(InvalidEmail::TooLong);
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidEmail::Whitespace);
    }
    let email = email.to_lowercase();
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(InvalidEmail::At);
    };
    if local.is_empty() || local.len() > 64 {
        return Err(InvalidEmail::Local);
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(InvalidEmail::Domain);
    }
    Ok(email)
}

/// The most common passwords (lowercase), from the public breach-corpus top lists. Short
/// ones are listed too although the length rule already refuses them.
const COMMON_PASSWORDS: &[&str] = &[
    "123456",
    "123456789",
    "12345678",
    "password",
    "qwerty123",
    "qwerty1",
    "111111",
    "12345",
    "secret",
    "123123",
    "1234567890",
    "1234567",
    "000000",
    "qwerty",
    "abc123",
    "password1",
    "iloveyou",
    "11111111",
    "dragon",
    "monkey",
    "123123123",
    "123321",
    "qwertyuiop",
    "00000000",
    "password123",
    "password12",
    "password!",
    "password1!",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "pa$$word",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1q2w3e4r5t6y",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "1qaz2wsx",
    "1qaz2wsx3edc",
    "zaq12wsx",
    "zaq1zaq1",
    "qazwsx123",
    "qazwsxedc",
    "qwe123456",
    "123qwe123",
    "123qweasd",
    "qweasdzxc",
    "asdfghjkl",
    "asdfasdf",
    "asdf1234",
    "qwer1234",
    "1234qwer",
    "abcd1234",
    "abc12345",
    "abc123456",
    "a1b2c3d4",
    "aa123456",
    "12341234",
    "12344321",
    "87654321",
    "88888888",
    "11223344",
    "112233445566",
    "147258369",
    "987654321",
    "123654789",
    "1111111111",
    "0987654321",
    "iloveyou1",
    "iloveyou2",
    "sunshine",
    "princess",
    "princess1",
    "football",
    "football1",
    "baseball",
    "basketball",
    "superman",
    "batman123",
    "starwars",
    "pokemon123",
    "trustno1",
    "letmein",
    "letmein1",
    "welcome",
    "welcome1",
    "welcome123",
    "admin123",
    "administrator",
    "changeme",
    "default1",
    "computer",
    "internet",
    "whatever",
    "michelle",
    "jennifer",
    "jordan23",
    "charlie1",
    "mercedes",
    "corvette",
    "maverick",
    "master123",
    "shadow123",
    "liverpool",
    "chelsea1",
    "arsenal1",
    "samsung1",
    "google123",
    "lovely123",
    "loveme123",
    "123abc123",
    "qwertyui",
    "qwerty12345",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify_round_trip() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn hashes_agree_with_the_password_hash_crates_own_api() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        // Stored hashes were made by the argon2 crate's PHC API: they keep verifying,
        // and ours verify there.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = hasher()
            .hash_password(b"older password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("older password", &theirs));
        assert!(!verify_password("older passwort", &theirs));
        let ours = hash_password("newer password").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(hasher().verify_password(b"newer password", &parsed).is_ok());
        // Other parameters (a change of defaults later) are read from the string.
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"cheap", &salt)
        .unwrap()
        .to_string();
        assert!(verify_password("cheap", &cheap));
    }

    #[test]
    fn salts_are_random() {
        let a = hash_password("same password").unwrap();
        let b = hash_password("same password").unwrap();
        assert_ne!(a, b);
        assert!(verify_password("same password", &a));
        assert!(verify_password("same password", &b));
    }

    #[test]
    fn garbage_hash_does_not_verify() {
        assert!(!verify_password("x", ""));
        assert!(!verify_password("x", "not a phc string"));
        assert!(!verify_password(
            "x",
            "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB"
        ));
        verify_dummy("anything");
    }

    #[test]
    fn strength_rules() {
        let email = "Alice.Smith@Example.com";
        assert_eq!(
            check_strength("short1!", email),
            Err(WeakPassword::TooShort { min: 8 })
        );
        // Characters, not bytes: 8 two-byte characters pass the length rule.
        assert_eq!(check_strength("éàüöçñßø", email), Ok(()));
        assert_eq!(
            check_strength(&"ab".repeat(129), email),
            Err(WeakPassword::TooLong { max: 256 })
        );
        assert_eq!(check_strength(&"ab".repeat(128), email), Ok(()));
        assert_eq!(
            check_strength("zzzzzzzzzz", email),
            Err(WeakPassword::RepeatedCharacter)
        );
        assert_eq!(
            check_strength("alice.smith@example.com", email),
            Err(WeakPassword::SameAsEmail)
        );
        assert_eq!(
            check_strength("ALICE.SMITH", email),
            Err(WeakPassword::SameAsEmail)
        );
        assert_eq!(
            check_strength("Password1", email),
            Err(WeakPassword::Common)
        );
        assert_eq!(
            check_strength("qwertyuiop", email),
            Err(WeakPassword::Common)
        );
        assert_eq!(check_strength("tangerine-otter-31", email), Ok(()));
        // An empty email does not make every password "the email".
        assert_eq!(check_strength("tangerine-otter-31", ""), Ok(()));
    }

    #[test]
    fn strength_messages_say_how_to_fix() {
        let msg = WeakPassword::TooShort { min: 8 }.to_string();
        assert!(msg.contains("at least 8 characters"), "{msg}");
        let msg = WeakPassword::Common.to_string();
        assert!(msg.contains("common") && msg.contains("choose"), "{msg}");
    }

    #[test]
    fn common_list_is_lowercase_and_sized() {
        assert!(COMMON_PASSWORDS.len() >= 100);
        for p in COMMON_PASSWORDS {
            assert_eq!(*p, p.to_lowercase());
        }
    }

    #[test]
    fn email_validation() {
        assert_eq!(
            validate_email("  Alice@Example.COM \n").as_deref(),
            Ok("alice@example.com")
        );
        assert_eq!(
            validate_email("a.b+tag@mail.example.co.uk").as_deref(),
            Ok("a.b+tag@mail.example.co.uk")
        );
        assert_eq!(validate_email("   "), Err(InvalidEmail::Empty));
        assert_eq!(validate_email("alice"), Err(InvalidEmail::At));
        assert_eq!(validate_email("a@b@example.com"), Err(InvalidEmail::At));
        assert_eq!(validate_email("@example.com"), Err(InvalidEmail::Local));
        assert_eq!(
            validate_email(&format!("{}@example.com", "a".repeat(65))),
            Err(InvalidEmail::Local)
        );
        assert_eq!(validate_email("alice@"), Err(InvalidEmail::Domain));
        assert_eq!(validate_email("alice@localhost"), Err(InvalidEmail::Domain));
        assert_eq!(validate_email("alice@example."), Err(InvalidEmail::Domain));
        assert_eq!(
            validate_email("alice@.example.com"),
            Err(InvalidEmail::Domain)
        );
        assert_eq!(
            validate_email("alice@example..com"),
            Err(InvalidEmail::Domain)
        );
        assert_eq!(
            validate_email("alice smith@example.com"),
            Err(InvalidEmail::Whitespace)
        );
        assert_eq!(
            validate_email("alice@exa\tmple.com"),
            Err(InvalidEmail::Whitespace)
        );
        let long = format!("a@{}.com", "b".repeat(250));
        assert_eq!(validate_email(&long), Err(InvalidEmail::TooLong));
    }
}
