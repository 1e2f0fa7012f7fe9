//! Key-value buckets over `wasi:keyvalue@0.2.0-draft` (`store`, `atomics`, `batch`).
//!
//! On gureum a bucket belongs to the function: two functions opening `"cache"` see
//! different data, and every instance of one function sees the same data (on every node).
//! Bucket names are 1–64 characters of `A-Z a-z 0-9 _ . -`; `""` opens `default`. Values
//! are bytes; [`Bucket::get_json`] / [`Bucket::set_json`] add serde on top. Increments
//! are atomic under any concurrency. Calls are synchronous (the host answers each before
//! the guest continues).
//!
//! Needs the crate feature `kv` (on by default). A component imports `wasi:keyvalue` only
//! if it really calls into this module; other hosts then need a `wasi:keyvalue`
//! implementation (e.g. `wasmtime serve -S keyvalue`, Spin's key-value stores).
//!
//! ```no_run
//! use gureum_sdk::kv::Bucket;
//!
//! # fn example() -> Result<(), gureum_sdk::Error> {
//! let bucket = Bucket::open("visits")?;
//! let visits = bucket.increment("home", 1)?;
//! bucket.set("last-visitor", "Ada")?;
//! assert_eq!(bucket.get_string("last-visitor")?.as_deref(), Some("Ada"));
//! for key in bucket.keys()? {
//!     println!("{key}");
//! }
//! # Ok(())
//! # }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, KeyValueError};

/// Guest bindings of `wasi:keyvalue@0.2.0-draft` (`wit/`).
mod bindings {
    #![allow(unsafe_code, missing_docs, clippy::all)]
    wit_bindgen::generate!({
        path: "wit",
        world: "gureum:sdk/imports",
        // The world's interfaces come from another package (wit/deps/keyvalue).
        generate_all,
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

impl From<store::Error> for KeyValueError {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::NoSuchStore => KeyValueError::NoSuchStore,
            store::Error::AccessDenied => KeyValueError::AccessDenied,
            store::Error::Other(message) => KeyValueError::Other(message),
        }
    }
}

impl From<store::Error> for Error {
    fn from(error: store::Error) -> Self {
        Error::KeyValue(error.into())
    }
}

/// One page of [`Bucket::list_keys`]: some keys, and the cursor of the next page.
///
/// ```no_run
/// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
/// let page = bucket.list_keys(None)?;
/// println!("{} keys, more: {}", page.keys.len(), page.cursor.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys of this page.
    pub keys: Vec<String>,
    /// Pass it to [`Bucket::list_keys`] for the next page; `None` on the last page.
    pub cursor: Option<u64>,
}

/// An open key-value bucket.
///
/// ```no_run
/// # fn example() -> Result<(), gureum_sdk::Error> {
/// let cache = gureum_sdk::kv::Bucket::open("cache")?;
/// cache.set("greeting", b"hello")?;
/// # Ok(())
/// # }
/// ```
pub struct Bucket {
    inner: store::Bucket,
    name: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish()
    }
}

impl Bucket {
    /// Opens bucket `name` (`""`: the bucket `default`).
    ///
    /// ```no_run
    /// # fn example() -> Result<(), gureum_sdk::Error> {
    /// let sessions = gureum_sdk::kv::Bucket::open("sessions")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(name: &str) -> Result<Bucket, Error> {
        Ok(Bucket {
            inner: store::open(name)?,
            name: name.to_owned(),
        })
    }

    /// The name it was opened with.
    ///
    /// ```no_run
    /// # fn example() -> Result<(), gureum_sdk::Error> {
    /// assert_eq!(gureum_sdk::kv::Bucket::open("cache")?.name(), "cache");
    /// # Ok(())
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`, `None` when it is not set.
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// if let Some(bytes) = bucket.get("avatar")? {
    ///     println!("{} bytes", bytes.len());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.inner.get(key)?)
    }

    /// The value of `key` as UTF-8 text, `None` when it is not set; an error when it is
    /// not UTF-8. Counters read back as decimal text (`"42"`).
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// let name = bucket.get_string("name")?.unwrap_or_default();
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key)? {
            Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
                Error::KeyValue(KeyValueError::Other(format!(
                    "the value of {key:?} in bucket {:?} is not UTF-8 text",
                    self.name
                )))
            }),
            None => Ok(None),
        }
    }

    /// The value of `key` decoded from JSON, `None` when it is not set.
    ///
    /// ```no_run
    /// #[derive(serde::Deserialize)]
    /// struct Prefs { theme: String }
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// let prefs: Option<Prefs> = bucket.get_json("prefs:ada")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
                Error::Json(format!(
                    "decoding the value of {key:?} in bucket {:?}: {error}",
                    self.name
                ))
            }),
            None => Ok(None),
        }
    }

    /// Sets `key` to `value`, creating or overwriting it.
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// bucket.set("motd", "hello")?;
    /// bucket.set("blob", vec![0u8, 1, 2])?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(self.inner.set(key, value.as_ref())?)
    }

    /// Sets `key` to `value` encoded as JSON.
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// bucket.set_json("prefs:ada", &serde_json::json!({"theme": "dark"}))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|error| {
            Error::Json(format!(
                "encoding the value of {key:?} for bucket {:?}: {error}",
                self.name
            ))
        })?;
        self.set(key, bytes)
    }

    /// Removes `key`; removing a key that is not set is not an error.
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// bucket.delete("motd")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        Ok(self.inner.delete(key)?)
    }

    /// Whether `key` is set.
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// if !bucket.exists("seeded")? {
    ///     bucket.set("seeded", "1")?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.inner.exists(key)?)
    }

    /// One page of the bucket's keys: start with `None`, then pass the page's `cursor`
    /// until it is `None`. On gureum a cursor stays valid on the same instance for the
    /// next 64 pages it lists.
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// let mut cursor = None;
    /// loop {
    ///     let page = bucket.list_keys(cursor)?;
    ///     for key in &page.keys {
    ///         println!("{key}");
    ///     }
    ///     match page.cursor {
    ///         Some(next) => cursor = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, Error> {
        let page = self.inner.list_keys(cursor)?;
        Ok(KeyPage {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    /// Every key of the bucket, following the cursors of [`Bucket::list_keys`].
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// let count = bucket.keys()?.len();
    /// # Ok(())
    /// # }
    /// ```
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_keys(cursor)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Adds `delta` (which may be negative) to the counter at `key`, atomically, and
    /// returns the new value; a missing key counts from 0. The counter reads back with
    /// [`Bucket::get_string`] as decimal text.
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// let left = bucket.increment("stock:apples", -1)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        // The WIT counts in u64; negative numbers travel in two's complement.
        let value = atomics::increment(&self.inner, key, delta.cast_unsigned())?;
        Ok(value.cast_signed())
    }

    /// The values of `keys`, in the same order (`None` for a key that is not set).
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// let values = bucket.get_many(&["a", "b"])?;
    /// assert_eq!(values.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let keys: Vec<String> = keys.iter().map(|key| key.as_ref().to_owned()).collect();
        let found = batch::get_many(&self.inner, &keys)?;
        Ok(found
            .into_iter()
            .map(|entry| entry.map(|(_, value)| value))
            .collect())
    }

    /// Sets every `(key, value)` pair. Not atomic: after an error some may be set.
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// bucket.set_many([("a", "1"), ("b", "2")])?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_many<K, V>(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<(), Error>
    where
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let entries: Vec<(String, Vec<u8>)> = entries
            .into_iter()
            .map(|(key, value)| (key.as_ref().to_owned(), value.as_ref().to_vec()))
            .collect();
        Ok(batch::set_many(&self.inner, &entries)?)
    }

    /// Removes every key of `keys` (keys that are not set are ignored).
    ///
    /// ```no_run
    /// # fn example(bucket: &gureum_sdk::kv::Bucket) -> Result<(), gureum_sdk::Error> {
    /// bucket.delete_many(&["a", "b"])?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn delete_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<(), Error> {
        let keys: Vec<String> = keys.iter().map(|key| key.as_ref().to_owned()).collect();
        Ok(batch::delete_many(&self.inner, &keys)?)
    }
}
