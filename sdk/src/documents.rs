//! JSON documents in collections: gureum's document store at
//! `$GUREUM_API/data/v1/collections/{collection}/docs`.
//!
//! A function calls with its own token (`GUREUM_FUNCTION_TOKEN`), which reaches only the
//! collections its gureum.toml grants (`[permissions] data = ["notes:write"]`: `read`
//! for get, list and streams, `write` for changes too, `"*:admin"` for every
//! collection); on those it skips the collection's rules, elsewhere it gets
//! [`crate::Error::Api`] with status 403 naming the grant to add. Documents it creates
//! are owned by `fn:NAME`. To act for a signed-in user under the rules instead, pass
//! that user's access token with [`Collection::with_token`].
//!
//! Document data is any serde type that is a JSON object; the methods are generic in it
//! (`serde_json::Value` works for untyped data).
//!
//! ```no_run
//! use gureum_sdk::documents::{Collection, Document, Query};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Note {
//!     text: String,
//!     done: bool,
//! }
//!
//! # async fn example() -> Result<(), gureum_sdk::Error> {
//! let notes = Collection::new("notes");
//! let created = notes.create(&Note { text: "buy milk".into(), done: false }).await?;
//! let found: Option<Document<Note>> = notes.get(&created.id).await?;
//! let open = notes
//!     .list::<Note>(&Query::new().filter("done", "=", false).sort("-created").limit(20))
//!     .await?;
//! let done: Document<Note> = notes.patch(&created.id, &serde_json::json!({"done": true})).await?;
//! notes.delete(&created.id).await?;
//! # Ok(())
//! # }
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wstd::http::Method;

use crate::Error;
use crate::api::Call;
use crate::http::percent_encode;

/// A stored document: the fields the server sets, and the data.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let doc: gureum_sdk::documents::Document<serde_json::Value> =
///     gureum_sdk::documents::Collection::new("notes").create(&serde_json::json!({"text": "hi"})).await?;
/// println!("{} v{} by {}: {}", doc.id, doc.version, doc.owner, doc.data["text"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document<T> {
    /// The document's id (time-ordered, assigned at creation).
    pub id: String,
    /// Who created it: a user id, or `fn:NAME` for a function.
    pub owner: String,
    /// Starts at 1 and grows with every write; the `If-Match` of conditional writes.
    pub version: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created: u64,
    /// Time of the last write, milliseconds since the Unix epoch.
    pub updated: u64,
    /// The document's fields.
    pub data: T,
}

/// One page of [`Collection::list`].
///
/// ```no_run
/// # use gureum_sdk::documents::{Collection, Page, Query};
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let page: Page<serde_json::Value> = Collection::new("notes").list(&Query::new()).await?;
/// if let Some(cursor) = page.next_cursor {
///     let next: Page<serde_json::Value> =
///         Collection::new("notes").list(&Query::new().cursor(cursor)).await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The documents of this page.
    pub docs: Vec<Document<T>>,
    /// Pass it to [`Query::cursor`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What [`Collection::list`] returns: filters, order, page size and position.
///
/// Filters are `FIELD OP VALUE` with OP one of `= != < <= > >= in`; FIELD is `id`,
/// `owner`, `created`, `updated` or a path into the data (`done`, `author.name`). All
/// filters must hold. The order is `created` ascending unless [`Query::sort`] says
/// otherwise.
///
/// ```
/// use gureum_sdk::documents::Query;
///
/// let query = Query::new().filter("done", "=", false).sort("-created").limit(20);
/// assert_eq!(query.query_string(), "where=done%20%3D%20false&sort=-created&limit=20");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    filters: Vec<String>,
    sort: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl Query {
    /// Every document, in creation order, 50 to a page.
    ///
    /// ```
    /// assert_eq!(gureum_sdk::documents::Query::new().query_string(), "");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the filter `field op value`, `value` written as JSON (a string is quoted, an
    /// array goes with `in`).
    ///
    /// ```
    /// use gureum_sdk::documents::Query;
    ///
    /// let query = Query::new().filter("author.name", "=", "Ada").filter("stars", "in", [4, 5]);
    /// assert_eq!(
    ///     query.query_string(),
    ///     "where=author.name%20%3D%20%22Ada%22&where=stars%20in%20%5B4%2C5%5D"
    /// );
    /// ```
    pub fn filter(self, field: &str, op: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned());
        self.filter_expr(format!("{field} {op} {value}"))
    }

    /// Adds a filter written out as the API takes it, e.g. `done = false` or
    /// `owner = "u1"`.
    ///
    /// ```
    /// let query = gureum_sdk::documents::Query::new().filter_expr("done = false");
    /// assert_eq!(query.query_string(), "where=done%20%3D%20false");
    /// ```
    pub fn filter_expr(mut self, expression: impl Into<String>) -> Self {
        self.filters.push(expression.into());
        self
    }

    /// Orders by `field`, ascending; `-field` for descending (e.g. `-created`).
    ///
    /// ```
    /// let query = gureum_sdk::documents::Query::new().sort("-updated");
    /// assert_eq!(query.query_string(), "sort=-updated");
    /// ```
    pub fn sort(mut self, field: impl Into<String>) -> Self {
        self.sort = Some(field.into());
        self
    }

    /// At most `limit` documents on a page (1–1000; default 50).
    ///
    /// ```
    /// let query = gureum_sdk::documents::Query::new().limit(5);
    /// assert_eq!(query.query_string(), "limit=5");
    /// ```
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after the page whose [`Page::next_cursor`] this is. Keep the filters and
    /// the order of the first page.
    ///
    /// ```
    /// let query = gureum_sdk::documents::Query::new().cursor("abc");
    /// assert_eq!(query.query_string(), "cursor=abc");
    /// ```
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The query as the API's query string (without `?`).
    ///
    /// ```
    /// let query = gureum_sdk::documents::Query::new().filter_expr("x > 1").limit(2);
    /// assert_eq!(query.query_string(), "where=x%20%3E%201&limit=2");
    /// ```
    pub fn query_string(&self) -> String {
        let mut pairs: Vec<String> = self
            .filters
            .iter()
            .map(|filter| format!("where={}", percent_encode(filter)))
            .collect();
        if let Some(sort) = &self.sort {
            pairs.push(format!("sort={}", percent_encode(sort)));
        }
        if let Some(limit) = self.limit {
            pairs.push(format!("limit={limit}"));
        }
        if let Some(cursor) = &self.cursor {
            pairs.push(format!("cursor={}", percent_encode(cursor)));
        }
        pairs.join("&")
    }
}

/// A collection of documents.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let posts = gureum_sdk::documents::Collection::new("posts");
/// let post = posts.create(&serde_json::json!({"title": "Hello"})).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    name: String,
    token: Option<String>,
}

impl Collection {
    /// The collection `name` (1–63 of `a-z 0-9 _ -`, starting with a letter or digit),
    /// used with the function's token.
    ///
    /// ```
    /// let notes = gureum_sdk::documents::Collection::new("notes");
    /// assert_eq!(notes.name(), "notes");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Collection {
            name: name.into(),
            token: None,
        }
    }

    /// The same collection used with `access_token` (a user's, from their
    /// `Authorization: Bearer …`), so the collection's rules apply as to that user and
    /// new documents are owned by them.
    ///
    /// ```no_run
    /// use gureum_sdk::http::{Body, Request};
    ///
    /// # async fn example(request: Request<Body>) -> Result<(), gureum_sdk::Error> {
    /// let token = request
    ///     .headers()
    ///     .get("authorization")
    ///     .and_then(|value| value.to_str().ok())
    ///     .and_then(|value| value.strip_prefix("Bearer "))
    ///     .unwrap_or_default();
    /// let mine = gureum_sdk::documents::Collection::new("notes").with_token(token);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_token(mut self, access_token: impl Into<String>) -> Self {
        self.token = Some(access_token.into());
        self
    }

    /// The collection's name.
    ///
    /// ```
    /// assert_eq!(gureum_sdk::documents::Collection::new("a").name(), "a");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    fn docs_path(&self) -> String {
        format!("/data/v1/collections/{}/docs", percent_encode(&self.name))
    }

    fn doc_path(&self, id: &str) -> String {
        format!("{}/{}", self.docs_path(), percent_encode(id))
    }

    fn call(&self, method: Method, path: String) -> Call<'_> {
        Call::new(method, path).token(self.token.as_deref())
    }

    /// Creates a document with `data` (which must serialize to a JSON object).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// let doc = gureum_sdk::documents::Collection::new("notes")
    ///     .create(&serde_json::json!({"text": "hi"}))
    ///     .await?;
    /// assert_eq!(doc.version, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create<T>(&self, data: &T) -> Result<Document<T>, Error>
    where
        T: Serialize + DeserializeOwned,
    {
        self.call(Method::POST, self.docs_path())
            .json(data)?
            .send()
            .await?
            .json("the created document")
    }

    /// The document `id`, or `None` when there is none.
    ///
    /// ```no_run
    /// use gureum_sdk::documents::{Collection, Document};
    ///
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// let doc: Option<Document<serde_json::Value>> = Collection::new("notes").get("0190").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, id: &str) -> Result<Option<Document<T>>, Error> {
        match self.call(Method::GET, self.doc_path(id)).send().await {
            Ok(reply) => reply.json("the document").map(Some),
            Err(error) if error.status() == Some(404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// One page of the documents `query` selects.
    ///
    /// ```no_run
    /// use gureum_sdk::documents::{Collection, Query};
    ///
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// let page = Collection::new("notes")
    ///     .list::<serde_json::Value>(&Query::new().filter("done", "=", false))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list<T: DeserializeOwned>(&self, query: &Query) -> Result<Page<T>, Error> {
        let query = query.query_string();
        let path = if query.is_empty() {
            self.docs_path()
        } else {
            format!("{}?{query}", self.docs_path())
        };
        self.call(Method::GET, path)
            .send()
            .await?
            .json("the document list")
    }

    /// Replaces the data of document `id` with `data`.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// let doc = gureum_sdk::documents::Collection::new("notes")
    ///     .replace("0190", &serde_json::json!({"text": "new text"}))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn replace<T>(&self, id: &str, data: &T) -> Result<Document<T>, Error>
    where
        T: Serialize + DeserializeOwned,
    {
        self.write(Method::PUT, id, data, None).await
    }

    /// Like [`Collection::replace`], only if the document is still at `version`; else an
    /// [`Error::Api`] with status 412 and code `version_mismatch`.
    ///
    /// ```no_run
    /// # async fn example(doc: gureum_sdk::documents::Document<serde_json::Value>) -> Result<(), gureum_sdk::Error> {
    /// gureum_sdk::documents::Collection::new("notes")
    ///     .replace_if_version(&doc.id, &doc.data, doc.version)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn replace_if_version<T>(
        &self,
        id: &str,
        data: &T,
        version: u64,
    ) -> Result<Document<T>, Error>
    where
        T: Serialize + DeserializeOwned,
    {
        self.write(Method::PUT, id, data, Some(version)).await
    }

    /// Merges `patch` into document `id` (RFC 7396 JSON merge patch: objects merge key by
    /// key, `null` removes a field) and returns the result.
    ///
    /// ```no_run
    /// use gureum_sdk::documents::{Collection, Document};
    ///
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// let doc: Document<serde_json::Value> = Collection::new("notes")
    ///     .patch("0190", &serde_json::json!({"done": true, "draft": null}))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn patch<T, P>(&self, id: &str, patch: &P) -> Result<Document<T>, Error>
    where
        T: DeserializeOwned,
        P: Serialize + ?Sized,
    {
        self.write(Method::PATCH, id, patch, None).await
    }

    /// Like [`Collection::patch`], only if the document is still at `version`.
    ///
    /// ```no_run
    /// use gureum_sdk::documents::{Collection, Document};
    ///
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// let doc: Document<serde_json::Value> = Collection::new("notes")
    ///     .patch_if_version("0190", &serde_json::json!({"done": true}), 3)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn patch_if_version<T, P>(
        &self,
        id: &str,
        patch: &P,
        version: u64,
    ) -> Result<Document<T>, Error>
    where
        T: DeserializeOwned,
        P: Serialize + ?Sized,
    {
        self.write(Method::PATCH, id, patch, Some(version)).await
    }

    /// Deletes document `id`; an [`Error::Api`] with status 404 when there is none.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// gureum_sdk::documents::Collection::new("notes").delete("0190").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.call(Method::DELETE, self.doc_path(id)).send().await?;
        Ok(())
    }

    /// Like [`Collection::delete`], only if the document is still at `version`.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// gureum_sdk::documents::Collection::new("notes").delete_if_version("0190", 2).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_if_version(&self, id: &str, version: u64) -> Result<(), Error> {
        self.call(Method::DELETE, self.doc_path(id))
            .header("if-match", format!("\"{version}\""))
            .send()
            .await?;
        Ok(())
    }

    async fn write<T, B>(
        &self,
        method: Method,
        id: &str,
        body: &B,
        version: Option<u64>,
    ) -> Result<Document<T>, Error>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        let mut call = self.call(method, self.doc_path(id)).json(body)?;
        if let Some(version) = version {
            call = call.header("if-match", format!("\"{version}\""));
        }
        call.send().await?.json("the written document")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_decode_from_the_api_shape() {
        let doc: Document<serde_json::Value> = serde_json::from_str(
            r#"{"id":"a1","owner":"fn:x","created":1,"updated":2,"version":3,"data":{"t":1}}"#,
        )
        .unwrap();
        assert_eq!(
            (doc.id.as_str(), doc.version, doc.data["t"].as_i64()),
            ("a1", 3, Some(1))
        );
        let page: Page<serde_json::Value> =
            serde_json::from_str(r#"{"docs":[],"next_cursor":null}"#).unwrap();
        assert!(page.docs.is_empty() && page.next_cursor.is_none());
    }

    #[test]
    fn queries_encode_every_part() {
        let query = Query::new()
            .filter("owner", "=", "fn:x")
            .sort("-created")
            .limit(2)
            .cursor("c/1+");
        assert_eq!(
            query.query_string(),
            "where=owner%20%3D%20%22fn%3Ax%22&sort=-created&limit=2&cursor=c%2F1%2B"
        );
        assert_eq!(
            Collection::new("a b").doc_path("x/y"),
            "/data/v1/collections/a%20b/docs/x%2Fy"
        );
    }
}
