//! The ProfileStore port on the single DynamoDB table of docs/architecture.md.
//!
//! | item    | pk                              | sk           |
//! |---------|---------------------------------|--------------|
//! | profile | `P#<shop>#<profile>`            | `PROFILE`    |
//! | alias   | `A#<shop>#<kind>#<value>`       | `ALIAS`      |
//! | message | `M#<ses message id>`            | `MESSAGE`    |
//! | stats   | `S#<shop>#<trigger>#<variant>`  | `D#<date>`   |
//! | product | `C#<shop>`                      | `P#<id>`     |
//! | erasure | `ERASED`                        | `<unix seconds>#<profile pk or shop>` |
//!
//! Every item carries `shop` (so `shop/redact` finds them all), and items
//! belonging to one person carry `owner` = the profile's pk: the `by-owner`
//! index lists them for an erase or a merge. A profile with pending checks
//! carries `due_bucket` / `next_due`, which the sparse `by-due` index sorts
//! for the reconcile sweep. Item ↔ struct mapping is serde_dynamo; writes
//! to a profile are conditional on `version`.
//!
//! Profiles, aliases and message records carry `ttl` (retention after their
//! last write), so nothing about a person outlives the retention. An alias
//! read with less than half the retention left is written again by the
//! event that read it (it is handed back as unlinked), so an alias in use
//! never lapses; one that has lapsed but is not yet removed by DynamoDB
//! counts as absent.
//!
//! An erase finds a person's items through `by-owner`, and a global
//! secondary index is eventually consistent: an alias written a moment
//! before the erase may not be listed yet. So every erase also leaves an
//! erasure record (profile id and shop, no personal data), and the
//! reconcile sweep looks again a minute later (`finish_erasures`), deleting
//! what was written before the erase and has turned up since.

mod items;
mod table;

pub use items::{ALIAS_SK, BY_DUE, BY_OWNER, DUE_BUCKETS, ERASED_PK, MESSAGE_SK, PROFILE_SK};
pub use table::create_table;

use items::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest};
use jiff::{SignedDuration, Timestamp};
use nudge_app::identity::{Alias, AliasKind, REDIRECT_KEPT_SECS, candidates, new_profile_id};
use nudge_app::ports::{
    CatalogueStore, Counter, MessageLog, MessageRecord, ProfileStore, ReadAhead, Resolved, Saved, StoreError,
};
use nudge_core::{ProductChange, Profile};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};

/// Requests made, by kind: the figures behind "DynamoDB requests per event".
#[derive(Debug, Default)]
pub struct Usage {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub conflicts: AtomicU64,
}

/// What a sweep found overdue.
#[derive(Debug, Default)]
pub struct Overdue {
    pub profiles: Vec<Profile>,
    /// Items that could not be read, taken out of the due index.
    pub set_aside: u32,
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: SignedDuration,
    pub usage: Arc<Usage>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, retention: SignedDuration) -> DynamoStore {
        DynamoStore { client, table: table.into(), retention, usage: Arc::default() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn read(&self) {
        self.usage.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn wrote(&self) {
        self.usage.writes.fetch_add(1, Ordering::Relaxed);
    }

    fn expiry(&self) -> i64 {
        Timestamp::now().saturating_add(self.retention).map_or(i64::MAX, |t| t.as_second())
    }

    /// An alias lives as long as the retention; a merge's redirect at least
    /// as long as the links that may name the retired profile.
    fn alias_expiry(&self, key: &str) -> i64 {
        let retained = self.expiry();
        if key.contains(&format!("#{}#", AliasKind::Merged.as_str())) {
            retained.max(Timestamp::now().as_second().saturating_add(REDIRECT_KEPT_SECS))
        } else {
            retained
        }
    }

    /// A profile item read back; `None` when absent, a stub, or expired but
    /// not yet removed by TTL (TTL deletion lags by up to two days).
    fn profile_of(mut item: HashMap<String, AttributeValue>) -> Result<Option<Profile>, StoreError> {
        let packed = item.remove(PACKED_DOC);
        let item: ProfileItem = from_item(item).map_err(corrupt)?;
        if item.ttl.is_some_and(|t| t <= Timestamp::now().as_second()) {
            return Ok(None);
        }
        let doc = match packed {
            Some(AttributeValue::B(bytes)) => Some(crate::document::unpack(bytes.as_ref())?),
            Some(_) => return Err(StoreError::Unavailable(format!("dynamodb: {PACKED_DOC} is not binary"))),
            None => None,
        };
        Ok(doc.map(|mut p| {
            p.version = item.version.unwrap_or(0);
            p
        }))
    }

    /// BatchGetItem of `keys` (≤ 100), retrying unprocessed keys.
    async fn batch_get(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut out = Vec::new();
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| unavailable("batch get", e))?;
        for attempt in 0..8 {
            self.read();
            let resp = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending.clone())
                .send()
                .await
                .map_err(|e| unavailable("batch get", e))?;
            if let Some(items) = resp.responses().and_then(|r| r.get(&self.table)) {
                out.extend(items.iter().cloned());
            }
            match resp.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => pending = rest.clone(),
                _ => return Ok(out),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
        }
        Err(StoreError::Unavailable("dynamodb batch get: keys still unprocessed after 8 attempts".into()))
    }

    /// BatchWriteItem in chunks of 25, retrying unprocessed items.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == 8 {
                    return Err(StoreError::Unavailable(
                        "dynamodb batch write: items unprocessed after 8 attempts".into(),
                    ));
                }
                self.wrote();
                let resp = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| unavailable("batch write", e))?;
                pending = resp.unprocessed_items().and_then(|u| u.get(&self.table)).cloned().unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
                attempt += 1;
            }
        }
        Ok(())
    }

    fn delete_request(k: HashMap<String, AttributeValue>) -> Result<WriteRequest, StoreError> {
        let d = DeleteRequest::builder().set_key(Some(k)).build().map_err(|e| unavailable("delete", e))?;
        Ok(WriteRequest::builder().delete_request(d).build())
    }

    fn put_request(item: HashMap<String, AttributeValue>) -> Result<WriteRequest, StoreError> {
        let p = PutRequest::builder().set_item(Some(item)).build().map_err(|e| unavailable("put", e))?;
        Ok(WriteRequest::builder().put_request(p).build())
    }

    fn alias_item(
        &self,
        shop: &str,
        alias: &Alias,
        profile: &str,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let pk = alias.key(shop);
        let ttl = Some(self.alias_expiry(&pk));
        to_item(AliasItem {
            pk,
            sk: ALIAS_SK.into(),
            shop: shop.into(),
            owner: profile_pk(shop, profile),
            profile: profile.into(),
            ttl,
        })
        .map_err(corrupt)
    }

    /// Keys (pk, sk) of every item owned by a profile.
    async fn owned(&self, shop: &str, id: &str) -> Result<Vec<Key>, StoreError> {
        self.query_keys(BY_OWNER, "#o = :o", &[("#o", "owner")], &[(":o", s(profile_pk(shop, id)))]).await
    }

    /// Keys of every item a (keys-only) index query returns.
    async fn query_keys(
        &self,
        index: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<Key>, StoreError> {
        let items = self.query(Some(index), condition, names, values).await?;
        Ok(items.iter().filter_map(key_of).collect())
    }

    /// Every item a query of the table (or of `index`) returns, page by page.
    async fn query(
        &self,
        index: Option<&str>,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let names: HashMap<_, _> = names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let values: HashMap<_, _> = values.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let mut out = Vec::new();
        let mut start = None;
        loop {
            self.read();
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(condition)
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(&format!("query {}", index.unwrap_or("table")), e))?;
            start = resp.last_evaluated_key().cloned();
            out.extend(resp.items.unwrap_or_default());
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Keys of every item of the table, or of one shop's, page by page.
    async fn scan_keys_of(&self, shop: Option<&str>) -> Result<Vec<Key>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            self.read();
            let mut scan = self.client.scan().table_name(&self.table).projection_expression("pk, sk");
            if let Some(shop) = shop {
                scan = scan
                    .filter_expression("#shop = :shop")
                    .expression_attribute_names("#shop", "shop")
                    .expression_attribute_values(":shop", s(shop));
            }
            let resp = scan.set_exclusive_start_key(start).send().await.map_err(|e| unavailable("scan", e))?;
            out.extend(resp.items().iter().filter_map(key_of));
            start = resp.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Records an SES message for the feedback join (expires with retention).
    async fn put_message(&self, m: &MessageRecord) -> Result<(), StoreError> {
        let item = to_item(MessageItem {
            pk: format!("M#{}", m.message_id),
            sk: MESSAGE_SK.into(),
            owner: profile_pk(&m.shop, &m.profile),
            ttl: self.expiry(),
            record: m.clone(),
        })
        .map_err(corrupt)?;
        self.wrote();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("put message", e))?;
        Ok(())
    }

    /// The message record of an SES message id.
    async fn get_message(&self, message_id: &str) -> Result<Option<MessageRecord>, StoreError> {
        self.read();
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("M#{message_id}"), MESSAGE_SK)))
            .send()
            .await
            .map_err(|e| unavailable("get message", e))?;
        let Some(item) = resp.item else { return Ok(None) };
        let item: MessageItem = from_item(item).map_err(corrupt)?;
        Ok(Some(item.record))
    }

    /// Adds to the per-day counters of one trigger variant (atomic `ADD`).
    async fn add_counts(
        &self,
        shop: &str,
        trigger: &str,
        variant: &str,
        day: jiff::civil::Date,
        counts: &[(&str, i64)],
    ) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut names = HashMap::from([("#shop".to_owned(), "shop".to_owned())]);
        let mut values = HashMap::from([(":shop".to_owned(), s(shop))]);
        let mut adds = Vec::new();
        for (i, (field, by)) in counts.iter().enumerate() {
            names.insert(format!("#c{i}"), (*field).to_owned());
            values.insert(format!(":c{i}"), n(by));
            adds.push(format!("#c{i} :c{i}"));
        }
        self.wrote();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("S#{shop}#{trigger}#{variant}"), &format!("D#{day}"))))
            .update_expression(format!("SET #shop = :shop ADD {}", adds.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| unavailable("update stats", e))?;
        Ok(())
    }

    /// The counters of one trigger variant on one day.
    pub async fn stats(
        &self,
        shop: &str,
        trigger: &str,
        variant: &str,
        day: jiff::civil::Date,
    ) -> Result<HashMap<String, i64>, StoreError> {
        self.read();
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("S#{shop}#{trigger}#{variant}"), &format!("D#{day}"))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("get stats", e))?;
        Ok(resp
            .item
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_n().ok()?.parse().ok()?)))
            .collect())
    }

    /// Profiles whose earliest pending check was due at or before `cutoff`
    /// (the `by-due` index, every bucket): the `limit` longest overdue, so
    /// that one sweep stays well inside its timeout and the next one
    /// carries on.
    pub async fn overdue(&self, cutoff: Timestamp, limit: usize) -> Result<Overdue, StoreError> {
        let mut entries = Vec::new();
        for bucket in 0..DUE_BUCKETS {
            let names = [("#b", "due_bucket"), ("#d", "next_due")];
            let values = [(":b", s(format!("DUE#{bucket}"))), (":d", n(cutoff.as_second()))];
            let items = self.query(Some(BY_DUE), "#b = :b AND #d <= :d", &names, &values).await?;
            for item in items {
                let due = item.get("next_due").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
                entries.extend(key_of(&item).map(|k| (due.unwrap_or(i64::MIN), k)));
            }
        }
        entries.sort_by_key(|(due, _)| *due);
        entries.truncate(limit);
        let keys: Vec<Key> = entries.into_iter().map(|(_, k)| k).collect();
        let mut out = Overdue::default();
        for chunk in keys.chunks(100) {
            for item in self.batch_get(chunk.to_vec()).await? {
                let key = key_of(&item);
                match Self::profile_of(item) {
                    Ok(p) => out.profiles.extend(p),
                    // One unreadable item must not stop the sweep: it is
                    // taken out of the due index, with the reason, and
                    // counted; the rest goes on.
                    Err(e) => {
                        out.set_aside += 1;
                        if let Some(key) = key {
                            self.set_aside(key, &e.to_string()).await?;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Counts a sweep that failed on a profile's check (`sweep_failures`);
    /// at [`nudge_app::usecase::MAX_SWEEP_FAILURES`] in a row, sets the
    /// profile aside with `reason` and returns true. A successful save
    /// clears the count.
    pub async fn sweep_failed(&self, shop: &str, id: &str, reason: &str) -> Result<bool, StoreError> {
        self.wrote();
        let pk = profile_pk(shop, id);
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), PROFILE_SK)))
            .update_expression("ADD #failures :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#failures", SWEEP_FAILURES)
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        let failures = match counted {
            Ok(out) => out
                .attributes
                .and_then(|a| a.get(SWEEP_FAILURES).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u32>().ok()))
                .unwrap_or(0),
            // Erased meanwhile: nothing left to set aside.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                return Ok(false);
            }
            Err(e) => return Err(unavailable("count a sweep failure", e)),
        };
        tracing::warn!(profile = %id, failures, reason, "a sweep failed on this profile's check");
        if failures < nudge_app::usecase::MAX_SWEEP_FAILURES {
            return Ok(false);
        }
        self.set_aside(key(pk, PROFILE_SK), &format!("{failures} sweeps failed: {reason}")).await?;
        Ok(true)
    }

    /// Takes a profile item out of the `by-due` index (no sweep finds it
    /// again), noting why in `set_aside`. The item itself is kept; the
    /// profile's next save puts it back.
    async fn set_aside(&self, key: Key, reason: &str) -> Result<(), StoreError> {
        let pk = key.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        tracing::error!(item = %pk, reason, "profile set aside from the reconcile sweep");
        self.wrote();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET set_aside = :r REMOVE due_bucket, next_due")
            .expression_attribute_values(":r", s(reason.chars().take(200).collect::<String>()))
            .send()
            .await
            .map_err(|e| unavailable("set aside", e))?;
        Ok(())
    }

    /// The erasure record of an erase happening now.
    fn erasure(&self, shop: &str, profile: Option<&str>) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let now = Timestamp::now();
        let of = profile.map_or_else(|| format!("S#{shop}"), |id| profile_pk(shop, id));
        to_item(ErasureItem {
            pk: ERASED_PK.into(),
            sk: format!("{:012}#{of}", now.as_second()),
            shop: shop.into(),
            profile: profile.map(str::to_owned),
            at: now.as_second(),
            ttl: now.saturating_add(ERASURE_KEPT).map_or(i64::MAX, |t| t.as_second()),
        })
        .map_err(corrupt)
    }

    /// Looks again for what every erase made up to `cutoff` should have
    /// deleted (the `by-owner` index, or for a shop the scan, may not have
    /// shown it yet): deletes each item found that was last written before
    /// that erase (its `ttl` says when), then the erasure record. Items
    /// written since (a new event about the person) stay. Returns how many
    /// items were left over.
    pub async fn finish_erasures(&self, cutoff: Timestamp) -> Result<u32, StoreError> {
        let upto = format!("{:012}~", cutoff.as_second());
        let names = [("#pk", "pk"), ("#sk", "sk")];
        let values = [(":pk", s(ERASED_PK)), (":upto", s(upto))];
        let records = self.query(None, "#pk = :pk AND #sk <= :upto", &names, &values).await?;
        let mut left_over = 0;
        for item in records {
            let record: ErasureItem = from_item(item).map_err(corrupt)?;
            let keys = match &record.profile {
                Some(id) => {
                    let mut keys = self.owned(&record.shop, id).await?;
                    keys.push(key(profile_pk(&record.shop, id), PROFILE_SK));
                    keys
                }
                None => self.scan_keys_of(Some(&record.shop)).await?,
            };
            let written_before = record.at.saturating_add(self.retention.as_secs());
            for k in keys {
                if k.get("pk").and_then(|v| v.as_s().ok()).is_some_and(|pk| pk == ERASED_PK) {
                    continue;
                }
                self.wrote();
                let deleted = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(k))
                    .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl <= :before)")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":before", n(written_before))
                    .send()
                    .await;
                match deleted {
                    Ok(_) => left_over += 1,
                    // Already gone, or written after the erase.
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(unavailable("delete left over", e)),
                }
            }
            self.wrote();
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(ERASED_PK.into(), &record.sk)))
                .send()
                .await
                .map_err(|e| unavailable("delete erasure record", e))?;
        }
        if left_over > 0 {
            tracing::warn!(left_over, "erase: items the index had not shown yet were deleted by the sweep");
        }
        Ok(left_over)
    }

    /// (pk, sk) of every item of the table; for tests and audits.
    pub async fn scan_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        let text = |k: &Key, name: &str| k.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        Ok(self.scan_keys_of(None).await?.iter().map(|k| (text(k, "pk"), text(k, "sk"))).collect())
    }

    async fn resolve_keys(
        &self,
        shop: &str,
        aliases: &[Alias],
        candidates: &[String],
    ) -> Result<(Resolved, ReadAhead), StoreError> {
        let mut keys: Vec<HashMap<String, AttributeValue>> = Vec::new();
        for a in aliases {
            let k = key(a.key(shop), ALIAS_SK);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys.extend(candidates.iter().map(|c| key(profile_pk(shop, c), PROFILE_SK)));
        // Aliases that lapsed count as absent; those past half their life
        // are linked again after the save (which renews their `ttl`).
        let now = Timestamp::now().as_second();
        let renew_before = Timestamp::now().saturating_add(self.retention / 2).map_or(i64::MAX, |t| t.as_second());
        let mut linked: HashMap<String, (String, bool)> = HashMap::new();
        let mut read: HashMap<String, Profile> = HashMap::new();
        for item in self.batch_get(keys).await? {
            if item.get("sk").and_then(|v| v.as_s().ok()).is_some_and(|sk| sk == PROFILE_SK) {
                if let Some(p) = Self::profile_of(item)? {
                    read.insert(p.id.clone(), p);
                }
            } else {
                let a: AliasItem = from_item(item).map_err(corrupt)?;
                match a.ttl {
                    Some(t) if t <= now => {}
                    ttl => {
                        let renew = ttl.is_none_or(|t| t < renew_before);
                        linked.insert(a.pk, (a.profile, renew));
                    }
                }
            }
        }
        let mut out = Resolved::default();
        for a in aliases {
            match linked.get(&a.key(shop)) {
                Some((p, renew)) => {
                    if out.profile.is_none() {
                        out.profile = Some(p.clone());
                    } else if out.profile.as_ref() != Some(p) && !out.others.contains(p) {
                        out.others.push(p.clone());
                    }
                    if *renew {
                        out.unlinked.push(a.clone());
                    }
                }
                None => out.unlinked.push(a.clone()),
            }
        }
        // The profile this event goes to, if it was among those read: the
        // linked one, or (nobody linked) the new profile of the first alias.
        let target = out.profile.clone().or_else(|| aliases.first().map(|a| new_profile_id(shop, a)));
        let preloaded = match target {
            Some(t) if candidates.contains(&t) => {
                read.remove(&t).map_or(ReadAhead::Absent, |p| ReadAhead::Found(Box::new(p)))
            }
            _ => ReadAhead::Nothing,
        };
        Ok((out, preloaded))
    }
}

/// A shop's catalogue is one partition: each change is one PutItem,
/// conditional on not being older than the change kept (a product webhook
/// carries one product), and the check function reads them back with one
/// paginated Query (and caches them, see `nudge_app::Catalogues`).
impl MessageLog for DynamoStore {
    fn record_message(&self, record: &MessageRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.put_message(record)
    }
    fn message(&self, message_id: &str) -> impl Future<Output = Result<Option<MessageRecord>, StoreError>> + Send {
        self.get_message(message_id)
    }
    async fn count(&self, r: &MessageRecord, day: jiff::civil::Date, counter: Counter) -> Result<(), StoreError> {
        self.add_counts(&r.shop, &r.trigger, &r.variant, day, &[(counter, 1)]).await
    }
}

impl CatalogueStore for DynamoStore {
    async fn put_products(&self, shop: &str, changes: &[ProductChange]) -> Result<Vec<ProductChange>, StoreError> {
        let mut recorded = Vec::with_capacity(changes.len());
        for c in changes {
            let product = match c {
                ProductChange::Upsert(p) => Some(p.clone()),
                ProductChange::Remove { .. } => None,
            };
            let at = c.at().map(Timestamp::as_second);
            let item = ProductItem {
                pk: format!("C#{shop}"),
                sk: format!("P#{}", c.id()),
                shop: shop.into(),
                product,
                updated_at: at,
            };
            let mut put =
                self.client.put_item().table_name(&self.table).set_item(Some(to_item(item).map_err(corrupt)?));
            if let Some(at) = at {
                put = put
                    .condition_expression("attribute_not_exists(#u) OR #u <= :u")
                    .expression_attribute_names("#u", "updated_at")
                    .expression_attribute_values(":u", n(at));
            }
            self.wrote();
            match put.send().await {
                Ok(_) => recorded.push(c.clone()),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(unavailable("put product", e)),
            }
        }
        Ok(recorded)
    }

    async fn products(&self, shop: &str) -> Result<Vec<ProductChange>, StoreError> {
        let items = self.query(None, "pk = :pk", &[], &[(":pk", s(format!("C#{shop}")))]).await?;
        items
            .into_iter()
            .map(|item| {
                let item: ProductItem = from_item(item).map_err(corrupt)?;
                let id = item.sk.strip_prefix("P#").unwrap_or(&item.sk).to_owned();
                let at = item.updated_at.and_then(|s| Timestamp::from_second(s).ok());
                Ok(item.product.map_or(ProductChange::Remove { id, at }, ProductChange::Upsert))
            })
            .collect()
    }
}

impl ProfileStore for DynamoStore {
    fn contended(&self, attempt: u32) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(nudge_app::ports::contention_backoff(attempt))
    }

    async fn resolve(&self, shop: &str, aliases: &[Alias]) -> Result<Resolved, StoreError> {
        if aliases.is_empty() {
            return Ok(Resolved::default());
        }
        Ok(self.resolve_keys(shop, aliases, &[]).await?.0)
    }

    /// One BatchGetItem for the aliases and the profiles they could have
    /// created (`nudge_app::identity::candidates`) together: a known
    /// person's event then costs this read and one UpdateItem.
    async fn resolve_with(&self, shop: &str, aliases: &[Alias]) -> Result<(Resolved, ReadAhead), StoreError> {
        self.resolve_keys(shop, aliases, &candidates(shop, aliases)).await
    }

    async fn link(&self, shop: &str, aliases: &[Alias], profile: &str) -> Result<(), StoreError> {
        let requests =
            aliases.iter().map(|a| Self::put_request(self.alias_item(shop, a, profile)?)).collect::<Result<_, _>>()?;
        self.batch_write(requests).await
    }

    async fn load(&self, shop: &str, id: &str) -> Result<Option<Profile>, StoreError> {
        self.read();
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(profile_pk(shop, id), PROFILE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("get profile", e))?;
        resp.item.map(Self::profile_of).transpose().map(Option::flatten)
    }

    /// One UpdateItem, conditional on the version read (or on there being
    /// no live profile yet). Attributes the profile does not own (none
    /// today) would survive, unlike with a PutItem.
    async fn save(&self, profile: &mut Profile, expected: Option<u64>) -> Result<Saved, StoreError> {
        let next = expected.map_or(1, |v| v + 1);
        let now = Timestamp::now().as_second();
        let pk = profile_pk(&profile.shop, &profile.id);
        let mut set = vec!["#doc = :doc", "#v = :next", "#shop = :shop", "#ttl = :ttl", "#owner = :owner"];
        let names = HashMap::from([
            ("#doc".to_owned(), PACKED_DOC.to_owned()),
            ("#v".to_owned(), "version".to_owned()),
            ("#shop".to_owned(), "shop".to_owned()),
            ("#ttl".to_owned(), "ttl".to_owned()),
            ("#owner".to_owned(), "owner".to_owned()),
            ("#bucket".to_owned(), "due_bucket".to_owned()),
            ("#due".to_owned(), "next_due".to_owned()),
            ("#failures".to_owned(), SWEEP_FAILURES.to_owned()),
            ("#aside".to_owned(), SET_ASIDE.to_owned()),
        ]);
        let doc = {
            let mut d = profile.clone();
            d.version = next;
            AttributeValue::B(Blob::new(crate::document::pack(&d)?))
        };
        let mut values = HashMap::from([
            (":doc".to_owned(), doc),
            (":next".to_owned(), n(next)),
            (":shop".to_owned(), s(profile.shop.as_str())),
            (":ttl".to_owned(), n(self.expiry())),
            (":owner".to_owned(), s(pk.clone())),
        ]);
        let remove = match profile.next_due() {
            Some(due) => {
                set.extend(["#bucket = :bucket", "#due = :due"]);
                values.insert(":bucket".into(), s(due_bucket(&profile.shop, &profile.id)));
                values.insert(":due".into(), n(due.as_second()));
                // A profile that saves again is back in the sweep, with a
                // clean slate.
                " REMOVE #failures, #aside"
            }
            None => " REMOVE #bucket, #due, #failures, #aside",
        };
        let condition = match expected {
            None => {
                values.insert(":now".into(), n(now));
                "attribute_not_exists(#v) OR #ttl <= :now"
            }
            Some(v) => {
                values.insert(":expected".into(), n(v));
                "#v = :expected"
            }
        };
        self.wrote();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, PROFILE_SK)))
            .update_expression(format!("SET {}{remove}", set.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => {
                profile.version = next;
                Ok(Saved::Ok)
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                self.usage.conflicts.fetch_add(1, Ordering::Relaxed);
                Ok(Saved::Conflict)
            }
            Err(e) => Err(unavailable("update profile", e)),
        }
    }

    /// Deletes the profile and everything it owns (aliases, message records).
    async fn erase(&self, shop: &str, id: &str) -> Result<(), StoreError> {
        let mut keys = self.owned(shop, id).await?;
        // The index is eventually consistent: name the profile itself too.
        let own = key(profile_pk(shop, id), PROFILE_SK);
        if !keys.contains(&own) {
            keys.push(own);
        }
        let mut requests = vec![Self::put_request(self.erasure(shop, Some(id))?)?];
        requests.extend(keys.into_iter().map(Self::delete_request).collect::<Result<Vec<_>, _>>()?);
        self.batch_write(requests).await
    }

    /// Deletes every item of a shop: a Scan filtered on `shop` (rare: Shopify
    /// sends `shop/redact` 48 hours after an uninstall).
    async fn erase_shop(&self, shop: &str) -> Result<(), StoreError> {
        let keys = self.scan_keys_of(Some(shop)).await?;
        let mut requests: Vec<_> = keys.into_iter().map(Self::delete_request).collect::<Result<_, _>>()?;
        requests.push(Self::put_request(self.erasure(shop, None)?)?);
        self.batch_write(requests).await
    }

    /// Re-points `from`'s aliases and message records at `into`, then
    /// deletes `from`.
    async fn merge_into(&self, shop: &str, from: &str, into: &str) -> Result<(), StoreError> {
        let owned = self.owned(shop, from).await?;
        let mut alias_keys = Vec::new();
        for k in &owned {
            let (Some(pk), Some(sk)) =
                (k.get("pk").and_then(|v| v.as_s().ok()), k.get("sk").and_then(|v| v.as_s().ok()))
            else {
                continue;
            };
            match sk.as_str() {
                ALIAS_SK => alias_keys.push(k.clone()),
                MESSAGE_SK => {
                    self.wrote();
                    self.client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(k.clone()))
                        .update_expression("SET #o = :o, #p = :p")
                        .condition_expression("attribute_exists(pk)")
                        .expression_attribute_names("#o", "owner")
                        .expression_attribute_names("#p", "profile")
                        .expression_attribute_values(":o", s(profile_pk(shop, into)))
                        .expression_attribute_values(":p", s(into))
                        .send()
                        .await
                        .map_err(|e| unavailable(&format!("re-point {pk}"), e))?;
                }
                _ => {}
            }
        }
        let mut requests = Vec::new();
        for chunk in alias_keys.chunks(100) {
            for item in self.batch_get(chunk.to_vec()).await? {
                let mut a: AliasItem = from_item(item).map_err(corrupt)?;
                a.owner = profile_pk(shop, into);
                a.profile = into.to_owned();
                a.ttl = Some(self.alias_expiry(&a.pk));
                requests.push(Self::put_request(to_item(a).map_err(corrupt)?)?);
            }
        }
        requests.push(Self::delete_request(key(profile_pk(shop, from), PROFILE_SK))?);
        self.batch_write(requests).await
    }
}
